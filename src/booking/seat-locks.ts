import {
  type SeatLease,
  type SeatRelease,
  transactionLease,
  transactionSeatLock,
} from "../seat-lock/seat-lock.ts";
import type { BookingDeps } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { noTelemetry } from "./telemetry.ts";

export { rememberSeatMap } from "./seat-catalogue.ts";

/**
 * How a hold uses the seat lock: take it before the claim, so buyers of a seat someone is claiming
 * are turned away without touching the database, and give it back whenever the claim did not
 * produce a new hold. Locks only shield the database; its constraint decides. Whatever the lock
 * is, its lease says what the claim's transaction must take for it (`transactionLocks`).
 */
export async function lockSeats(
  deps: BookingDeps,
  claim: { sessionId: string; seatIds: string[]; owner: string },
  idempotent: boolean,
): Promise<Result<SeatLease>> {
  const seatLock = deps.seatLock ?? transactionSeatLock;
  const refusals = idempotent ? undefined : deps.refusals;
  // Another buyer's lock attempt on these seats is in flight here: its answer decides this one too.
  const pending = refusals?.inFlight(claim.seatIds);
  if (pending) {
    await pending;
    const known = refusals?.refused(claim.seatIds) ?? [];
    if (known.length > 0) {
      telemetryOf(deps).lockAcquisition("memory", "conflict");
      return fail({ code: "SEAT_UNAVAILABLE", seatIds: known });
    }
  }
  // Buyers of these seats who arrive meanwhile wait for this answer, and find it remembered: the
  // seats the lock refused, or these seats once the lock holds them for this hold (a lease whose
  // locks are taken in the claim's transaction holds nothing yet).
  const settle = deps.refusals?.attempting(claim.seatIds);
  let attempt: Awaited<ReturnType<typeof seatLock.acquire>>;
  try {
    attempt = await seatLock.acquire({ ...claim, ttlMs: deps.reservationTtlSeconds * 1000 });
    if (!attempt.acquired) deps.refusals?.remember(attempt.seatIds);
    else if (attempt.lease.transactionLocks.length === 0) deps.refusals?.remember(claim.seatIds);
  } finally {
    settle?.();
  }
  if (attempt.acquired) {
    // A lease taken in the transaction is counted once the claim has tried it (`transactionLocksTried`).
    if (attempt.lease.transactionLocks.length === 0)
      telemetryOf(deps).lockAcquisition(attempt.lease.backend, "acquired");
    return ok(attempt.lease);
  }
  telemetryOf(deps).lockAcquisition(attempt.backend, "conflict");
  // A retry of a hold that went through finds its own seats locked; only the database knows the
  // key and can replay the stored answer, so such a request goes on with in-transaction locks.
  if (idempotent) return ok(transactionLease(claim.seatIds));
  return fail({ code: "SEAT_UNAVAILABLE", seatIds: attempt.seatIds });
}

/** After the claim: counts the try-locks a lease asked of its transaction, taken or refused. */
export function transactionLocksTried(deps: BookingDeps, lease: SeatLease, refused: boolean): void {
  if (lease.transactionLocks.length === 0) return;
  telemetryOf(deps).lockAcquisition(lease.backend, refused ? "conflict" : "acquired");
}

/** The seats a hold's lock covers, with the hold's id as the owner token. */
export function lockedSeatsOf(hold: { id: string; sessionId: string; seatIds: string[] }): SeatRelease {
  return { sessionId: hold.sessionId, seatIds: hold.seatIds, owner: hold.id };
}

/**
 * After a payment, cancellation or expiry; this instance stops refusing the seats from memory.
 * Never throws: an unreleased lock ends with its TTL.
 */
export async function releaseSeatLocks(
  deps: Pick<BookingDeps, "seatLock" | "refusals">,
  seats: SeatRelease,
): Promise<void> {
  deps.refusals?.forget(seats.seatIds);
  if (!deps.seatLock || seats.seatIds.length === 0) return;
  await deps.seatLock.release(seats).catch(() => undefined);
}

function telemetryOf(deps: BookingDeps) {
  return deps.telemetry ?? noTelemetry;
}
