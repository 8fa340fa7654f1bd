import { transactionRetried } from "../db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../db/errors.ts";
import { notifyRelays } from "../events/outbox.ts";
import { type PaymentClaim, payInDatabase } from "./claim-statements.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { withdrawHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { hideFromOthers } from "./ownership.ts";
import { payInBatch } from "./pay-batch.ts";
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
 * twice (or ten times at once) makes one sale and answers it every time. Without an
 * Idempotency-Key a payment goes with the others waiting on its database (pay-batch.ts).
 */
export async function payReservation(
  deps: BookingDeps,
  request: PaymentRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { reservationId } = request;
  // The owner check runs inside the payment statement, under the reservation's row lock.
  const owner = request.buyerId ?? request.userId;
  let paidNow = false;
  const settle = (paid: Awaited<ReturnType<typeof payInDatabase>>): Result<Outcome<ReservationView>> => {
    if (!paid.ok) return hideFromOthers(paid, request);
    paidNow = paid.value.paidNow;
    return ok({ view: paid.value.view, replayed: false });
  };
  try {
    // One statement, one round trip; an idempotency key must share its transaction.
    const result = idempotency
      ? await transactionRetried(deps.db, async (tx): Promise<Result<Outcome<ReservationView>>> => {
          paidNow = false;
          const key = await takeIdempotencyKey(tx, idempotency);
          if (!key.ok) return key;
          if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
          const paid = await payInDatabase(tx, reservationId, owner);
          if (paid.ok) await rememberResponse(tx, idempotency, paid.value.view);
          return settle(paid);
        })
      : settle(await paidInBatch(deps, { reservationId, userId: owner }));
    // Only the payment that made the sale, once committed: not repeats, not replays.
    if (paidNow && result.ok) {
      (deps.telemetry ?? noTelemetry).holdOutcome("paid");
      notifyRelays(deps.db);
      await withdrawHoldExpiry(deps, reservationId);
      // A sold seat is refused by the database; its lock would only delay that answer.
      await releaseSeatLocks(deps, lockedSeatsOf(result.value.view));
    }
    return result;
  } catch (error) {
    if (sqlState(error) === EXCLUSION_VIOLATION) return fail({ code: "RESERVATION_EXPIRED", reservationId });
    throw error;
  }
}

async function paidInBatch(deps: BookingDeps, payment: PaymentClaim) {
  const paid = await payInBatch(deps.db, payment, deps.paymentBatch);
  // A payment's own failure is rejected by the batcher; what reaches here was answered.
  if (paid.outcome !== "answered") throw new Error(`payment failed: ${paid.message}`);
  return paid.result;
}
