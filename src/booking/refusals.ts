/**
 * Seats this instance has just found taken, remembered for a short window, so that a crowd of
 * buyers of the same seats is turned away from memory instead of each asking Redis or PostgreSQL.
 * It only ever refuses: an entry that outlives its seat's hold costs a needless 409 for at most
 * `windowMs`, never a sale. Seats this instance frees (a cancelled hold, a claim that did not go
 * through) are forgotten at once; a seat freed elsewhere is refused here until its entry ends.
 */
export type RefusalMemo = {
  /** The seats of `seatIds` found taken less than the window ago. */
  refused(seatIds: readonly string[]): string[];
  /** Seats the lock or the database has just refused. */
  remember(seatIds: readonly string[]): void;
  forget(seatIds: readonly string[]): void;
};

export type RefusalMemoOptions = {
  /** 0 remembers nothing. */
  windowMs: number;
  /** Past this many entries, ended ones are dropped, and all of them if that is not enough. */
  maxSeats?: number;
  now?: () => number;
};

export function createRefusalMemo(options: RefusalMemoOptions): RefusalMemo {
  const { windowMs, maxSeats = 100_000, now = Date.now } = options;
  const refusedUntil = new Map<string, number>();

  function makeRoom(at: number, seats: number): void {
    for (const [seatId, until] of refusedUntil) if (until <= at) refusedUntil.delete(seatId);
    if (refusedUntil.size + seats > maxSeats) refusedUntil.clear();
  }

  return {
    refused(seatIds) {
      if (refusedUntil.size === 0) return [];
      const at = now();
      return seatIds.filter((seatId) => (refusedUntil.get(seatId) ?? 0) > at);
    },
    remember(seatIds) {
      if (windowMs <= 0) return;
      const at = now();
      if (refusedUntil.size + seatIds.length > maxSeats) makeRoom(at, seatIds.length);
      for (const seatId of seatIds) refusedUntil.set(seatId, at + windowMs);
    },
    forget(seatIds) {
      for (const seatId of seatIds) refusedUntil.delete(seatId);
    },
  };
}
