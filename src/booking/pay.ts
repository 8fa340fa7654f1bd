import { notifyRelays } from "../events/outbox.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { withdrawHoldExpiry } from "./expiry-callbacks.ts";
import type { IdempotencyRequest } from "./idempotency.ts";
import { hideFromOthers } from "./ownership.ts";
import { payInBatch } from "./pay-batch.ts";
import type { PaymentOutcome } from "./pay-statement.ts";
import { lockedSeatsOf, releaseSeatLocks } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

/**
 * `userId`: the owner the caller claims (a mismatch is RESERVATION_NOT_OWNED). `buyerId`: the
 * authenticated buyer; another buyer's reservation is RESERVATION_NOT_FOUND to them.
 */
export type PaymentRequest = { reservationId: string; userId?: string; buyerId?: string };

/**
 * Turns a live hold into a sale. Payments of one reservation take turns on its row lock, so paying
 * twice (or ten times at once) makes one sale and answers it every time. A payment goes with the
 * others waiting on its database (pay-batch.ts); its Idempotency-Key, when it has one, is taken and
 * its answer remembered in that batch's transaction.
 */
export async function payReservation(
  deps: BookingDeps,
  request: PaymentRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { reservationId } = request;
  // The owner check runs in the payment statement, under the reservation's row lock.
  const userId = request.buyerId ?? request.userId;
  const paid = await payInBatch(deps.db, { reservationId, userId, idempotency }, deps.paymentBatch);
  // Only the payment that made the sale, once committed: not repeats, not replays.
  if (paid.outcome === "paid" && paid.paidNow) {
    (deps.telemetry ?? noTelemetry).holdOutcome("paid");
    notifyRelays(deps.db);
    await withdrawHoldExpiry(deps, reservationId);
    // A sold seat is refused by the database; its lock would only delay that answer.
    await releaseSeatLocks(deps, lockedSeatsOf(paid.view));
  }
  return resultOf(paid, request, idempotency);
}

function resultOf(
  paid: PaymentOutcome,
  request: PaymentRequest,
  idempotency: IdempotencyRequest | undefined,
): Result<Outcome<ReservationView>> {
  switch (paid.outcome) {
    case "paid":
      return ok({ view: paid.view, replayed: false });
    case "replayed":
      return ok({ view: paid.stored as ReservationView, replayed: true });
    case "key_in_use":
      return fail({ code: "IDEMPOTENCY_KEY_IN_USE", key: idempotency?.key ?? "" });
    case "key_reused":
      return fail({ code: "IDEMPOTENCY_KEY_REUSED", key: idempotency?.key ?? "" });
    case "refused":
      return hideFromOthers(fail({ code: paid.code, reservationId: request.reservationId }), request);
    default:
      // The batcher rejects a payment that failed on its own; nothing else is left.
      throw new Error(`unexpected payment outcome ${JSON.stringify(paid)}`);
  }
}
