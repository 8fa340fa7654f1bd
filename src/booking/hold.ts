import { notifyRelays } from "../events/outbox.ts";
import { claimInBatch } from "./claim-batch.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { scheduleHoldExpiry } from "./expiry-callbacks.ts";
import type { IdempotencyRequest } from "./idempotency.ts";
import { fromCents } from "./money.ts";
import { selectSeats } from "./seat-catalogue.ts";
import { lockSeats, transactionLocksTried } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

export type HoldRequest = { userId: string; seatIds: string[] };

/**
 * Holds every requested seat for one user, or none. The exclusion constraint on claims is the
 * guarantee; the seat lock in front of it (Redis before the claim, or try-locks inside its
 * transaction, as the lease asks) only turns concurrent buyers of one seat away at once instead of
 * letting them queue on the constraint. The claim goes with the other holds waiting on this
 * database, in one transaction (claim-batch.ts); it commits or fails on its own. The reservation id
 * is chosen first: it is the lock's owner token.
 */
export async function holdSeats(
  deps: BookingDeps,
  request: HoldRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const result = await attemptHold(deps, request, idempotency);
  const telemetry = deps.telemetry ?? noTelemetry;
  if (result.ok && !result.value.replayed) {
    telemetry.holdOutcome("created");
    notifyRelays(deps.db);
    await scheduleHoldExpiry(deps, result.value.view.id);
  } else if (!result.ok && result.error.code === "SEAT_UNAVAILABLE") {
    telemetry.holdOutcome("conflict");
  }
  return result;
}

/**
 * Seats found taken a moment ago are refused from memory. A request with an Idempotency-Key
 * skips that check: it may be the retry of the very hold that took them, and only the database
 * has its stored answer.
 */
async function attemptHold(
  deps: BookingDeps,
  request: HoldRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const seatIds = [...new Set(request.seatIds)].sort();
  const known = idempotency === undefined ? (deps.refusals?.refused(seatIds) ?? []) : [];
  if (known.length > 0) {
    (deps.telemetry ?? noTelemetry).lockAcquisition("memory", "conflict");
    return fail({ code: "SEAT_UNAVAILABLE", seatIds: known });
  }
  const result = await lockAndClaim(deps, seatIds, request.userId, idempotency);
  if (!result.ok && result.error.code === "SEAT_UNAVAILABLE") deps.refusals?.remember(result.error.seatIds);
  return result;
}

async function lockAndClaim(
  deps: BookingDeps,
  seatIds: string[],
  userId: string,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const selected = await selectSeats(deps.db, seatIds);
  if (!selected.ok) return selected;
  const { sessionId, totalCents, seats } = selected.value;
  const reservationId = crypto.randomUUID();
  const locked = await lockSeats(
    deps,
    { sessionId, seatIds, owner: reservationId },
    idempotency !== undefined,
  );
  if (!locked.ok) return locked;
  const lease = locked.value;
  // The answer is the service's own: it knows the seats, their session and price; the database
  // adds only the times it gives the claim.
  const ordered = seats.map((seat) => seat.id);
  const pending = {
    id: reservationId,
    sessionId,
    userId,
    status: "PENDING" as const,
    seatIds: ordered,
    seats: seats.map(({ id, row, number, label }) => ({ id, row, number, label })),
    totalPrice: fromCents(totalCents),
  };
  let created = false;
  try {
    const claimed = await claimInBatch(
      deps.db,
      {
        reservationId,
        userId,
        sessionId,
        seatIds,
        totalCents,
        ttlSeconds: deps.reservationTtlSeconds,
        transactionLocks: lease.transactionLocks,
        event: { reservationId, sessionId, userId, seatIds: ordered, totalPrice: pending.totalPrice },
        idempotency: idempotency && { ...idempotency, answer: { ...pending, sale: null } },
      },
      deps.claimBatch,
    );
    transactionLocksTried(deps, lease, claimed.outcome === "locked");
    switch (claimed.outcome) {
      case "created":
        created = true;
        return ok({
          view: { ...pending, expiresAt: claimed.expiresAt, createdAt: claimed.createdAt, sale: null },
          replayed: false,
        });
      case "replayed":
        return ok({ view: claimed.stored as ReservationView, replayed: true });
      case "taken":
      case "locked":
        return fail({ code: "SEAT_UNAVAILABLE", seatIds: claimed.seatIds });
      case "key_in_use":
        return fail({ code: "IDEMPOTENCY_KEY_IN_USE", key: idempotency?.key ?? "" });
      case "key_reused":
        return fail({ code: "IDEMPOTENCY_KEY_REUSED", key: idempotency?.key ?? "" });
      default:
        throw new Error(`unexpected claim outcome ${JSON.stringify(claimed)}`);
    }
  } finally {
    // The lock stays with the new hold (until paid, cancelled or expired); otherwise it goes now.
    if (!created) {
      deps.refusals?.forget(seatIds);
      await lease.release();
    }
  }
}
