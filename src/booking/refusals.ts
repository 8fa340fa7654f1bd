/**
 * Seats this instance has just found taken, remembered for a short window, so that a crowd of
 * buyers of the same seats is turned away from memory instead of each asking Redis or PostgreSQL.
 * It only ever refuses: an entry that outlives its seat's hold costs a needless 409 for at most
 * `windowMs`, never a sale. Seats this instance frees (a cancelled hold, a claim that did not go
 * through) are forgotten at once; a seat freed elsewhere is refused here until its entry ends.
 *
 * It also knows the seats whose lock this instance is asking for right now: a crowd arriving at
 * once would otherwise all ask the lock before the first answer is back. Their buyers wait for that
 * answer (one lock round trip) and are then refused from memory if the seats were locked or refused.
 */
export type RefusalMemo = {
  /** The seats of `seatIds` found taken less than the window ago. */
  refused(seatIds: readonly string[]): string[];
  /** Seats the lock or the database has just refused, or this instance has just locked. */
  remember(seatIds: readonly string[]): void;
  forget(seatIds: readonly string[]): void;
  /** Settles once no lock attempt this instance has in flight covers any of `seatIds`; none: undefined. */
  inFlight(seatIds: readonly string[]): Promise<void> | undefined;
  /** Marks a lock attempt on `seatIds` as in flight until the returned function is called. */
  attempting(seatIds: readonly string[]): () => void;
  /** Entries kept, ended ones included until they are swept. */
  size(): number;
};

export type RefusalMemoOptions = {
  /** 0 remembers nothing. */
  windowMs: number;
  /** Past this many entries, ended ones are dropped, and all of them if that is not enough. */
  maxSeats?: number;
  now?: () => number;
};

/**
 * Entries whose window has ended are swept once the memo has doubled since the last sweep (and
 * holds at least this many), so it stays near twice the seats refused within one window instead
 * of filling up to `maxSeats` with ended entries; the entries added pay for the sweep.
 */
const SWEEP_FROM = 1_024;

export function createRefusalMemo(options: RefusalMemoOptions): RefusalMemo {
  // An entry is a seat id and a time, ~80 bytes: 100,000 of them (more seats than one instance
  // refuses within any window: it answers ~15,000 decisions a second) are ~8 MB at most.
  const { windowMs, maxSeats = 100_000, now = Date.now } = options;
  const refusedUntil = new Map<string, number>();
  const attempts = new Map<string, Promise<void>>();
  let sweepAt = SWEEP_FROM;

  function makeRoom(at: number, seats: number): void {
    for (const [seatId, until] of refusedUntil) if (until <= at) refusedUntil.delete(seatId);
    if (refusedUntil.size + seats > maxSeats) refusedUntil.clear();
    sweepAt = Math.max(SWEEP_FROM, 2 * refusedUntil.size);
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
      const size = refusedUntil.size + seatIds.length;
      if (size > maxSeats || size > sweepAt) makeRoom(at, seatIds.length);
      for (const seatId of seatIds) refusedUntil.set(seatId, at + windowMs);
    },
    forget(seatIds) {
      for (const seatId of seatIds) refusedUntil.delete(seatId);
    },
    inFlight(seatIds) {
      if (attempts.size === 0) return undefined;
      const pending = seatIds.flatMap((seatId) => attempts.get(seatId) ?? []);
      if (pending.length === 0) return undefined;
      return pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined);
    },
    attempting(seatIds) {
      // Nothing to learn from another buyer's attempt when nothing is remembered.
      if (windowMs <= 0) return () => {};
      let resolve = () => {};
      const promise = new Promise<void>((settle) => {
        resolve = settle;
      });
      for (const seatId of seatIds) attempts.set(seatId, promise);
      return () => {
        for (const seatId of seatIds) if (attempts.get(seatId) === promise) attempts.delete(seatId);
        resolve();
      };
    },
    size: () => refusedUntil.size,
  };
}
