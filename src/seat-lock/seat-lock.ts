/**
 * The seat-lock port: a contention shield in front of the claim transaction. It decides who may
 * try to claim seats, never who owns them; the exclusion constraint on claims does that. A lock
 * that is lost, stale or skipped costs speed (a needless 409 or a wasted transaction), never a
 * double sale.
 */

export type SeatLockBackend = "upstash" | "redis" | "advisory";

/** One hold's seats, as the lock sees them. */
export type SeatClaim = {
  /** The seats' session; Redis keys carry it as their hash tag so a claim's keys share a slot. */
  sessionId: string;
  /** Distinct seat ids in ascending order. */
  seatIds: readonly string[];
  /** The reservation id the hold will have: only this owner can release the seats. */
  owner: string;
  /** As long as the hold lasts, in milliseconds. */
  ttlMs: number;
};

export type SeatRelease = Omit<SeatClaim, "ttlMs">;

/**
 * A successful acquisition, for the lifetime of one hold attempt. It says what the claim's
 * transaction must do for it, and the claim does exactly that without asking which lock it is.
 */
export type SeatLease = {
  readonly backend: SeatLockBackend;
  /**
   * Seats the claim's transaction must try-lock (advisory locks, which live in the transaction;
   * the claim fails if one is held elsewhere), in ascending order; none when the lock is
   * already held outside the database (Redis).
   */
  readonly transactionLocks: readonly string[];
  /** Gives the seats back at once: the claim did not commit, or committed nothing new. Never throws. */
  release(): Promise<void>;
};

export type LockAttempt =
  | { acquired: true; lease: SeatLease }
  | { acquired: false; backend: SeatLockBackend; seatIds: string[] };

export type SeatLock = {
  /** True when `acquire` needs the claim's session id, which the caller then reads first. */
  readonly keyedBySession: boolean;
  /** Every seat of the claim or none, in one round trip; names the seats held by someone else. */
  acquire(claim: SeatClaim): Promise<LockAttempt>;
  /** After a payment, cancellation or expiry: frees the seats the owner still holds, nobody else's. */
  release(seats: SeatRelease): Promise<void>;
  /**
   * After a hold was extended: the seats the owner still holds now end `ttlMs` from now. Absent
   * where locks live only inside the claim transaction (advisory locks).
   */
  extend?(seats: SeatRelease, ttlMs: number): Promise<void>;
};

/** The Redis key of one seat's lock; `{sessionId}` is the hash tag. */
export function seatLockKey(prefix: string, sessionId: string, seatId: string): string {
  return `${prefix}{${sessionId}}:${seatId}`;
}

export const DEFAULT_KEY_PREFIX = "seat-lock:";

/** A lease whose seats are taken by try-locks inside the claim's transaction; nothing to release. */
export function transactionLease(seatIds: readonly string[]): SeatLease {
  return { backend: "advisory", transactionLocks: seatIds, release: async () => {} };
}

/**
 * The lock used when no other is configured: nothing to take before the claim, try-locks on the
 * seats inside its transaction (PostgreSQL advisory locks), nothing to give back after it.
 */
export const transactionSeatLock: SeatLock = {
  keyedBySession: false,
  async acquire(claim: SeatClaim): Promise<LockAttempt> {
    return { acquired: true, lease: transactionLease(claim.seatIds) };
  },
  async release() {},
};
