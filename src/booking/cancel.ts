import { sql } from "drizzle-orm";
import { transactionRetried } from "../db/database.ts";
import { appendEvents, notifyRelays } from "../events/outbox.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { withdrawHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { hideFromOthers } from "./ownership.ts";
import { getReservation, lockReservation } from "./reservations.ts";
import { lockedSeatsOf, releaseSeatLocks } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

/**
 * Gives a live hold back before its time is up: its claims end now, so the seats are free at once.
 * Cancelling a cancelled hold answers it again; a sale or an expired hold cannot be cancelled.
 * With an idempotency key, the key is taken in the cancelling transaction and remembers its answer.
 */
export async function cancelReservation(
  deps: BookingDeps,
  request: { reservationId: string; userId?: string; buyerId?: string },
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { reservationId } = request;
  const owner = request.buyerId ?? request.userId;
  let cancelledNow = false;
  const result = await transactionRetried(deps.db, async (tx): Promise<Result<Outcome<ReservationView>>> => {
    cancelledNow = false;
    if (idempotency) {
      const key = await takeIdempotencyKey(tx, idempotency);
      if (!key.ok) return key;
      if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
    }
    const reservation = await lockReservation(tx, reservationId);
    if (!reservation) return fail({ code: "RESERVATION_NOT_FOUND", reservationId });
    if (owner !== undefined && owner !== reservation.userId) {
      return hideFromOthers(fail({ code: "RESERVATION_NOT_OWNED", reservationId }), request);
    }
    if (reservation.status === "CONFIRMED") return fail({ code: "RESERVATION_CONFIRMED", reservationId });
    if (reservation.status === "EXPIRED" || (reservation.status === "PENDING" && !reservation.live)) {
      return fail({ code: "RESERVATION_EXPIRED", reservationId });
    }
    if (reservation.status === "PENDING") {
      // Cut now, but never later than the claim's own end: the hold may run out between the
      // check above and this statement, and a claim's end never moves later.
      await tx.execute(sql`
        UPDATE reservation_seats SET claim = tstzrange(lower(claim), LEAST(upper(claim), clock_timestamp()))
        WHERE reservation_id = ${reservationId}::uuid`);
      await tx.execute(sql`
        UPDATE reservations SET status = 'CANCELLED', updated_at = now() WHERE id = ${reservationId}::uuid`);
      const { sessionId, userId, seatIds } = reservation;
      await appendEvents(tx, reservationId, [
        { type: "reservation.cancelled", data: { reservationId, sessionId, userId, seatIds } },
        ...seatIds.map((seatId) => ({
          type: "seat.released" as const,
          data: { seatId, sessionId, reservationId, reason: "cancelled" as const },
        })),
      ]);
      cancelledNow = true;
    }
    const view = await getReservation(tx, reservationId);
    if (!view.ok) return view;
    if (idempotency) await rememberResponse(tx, idempotency, view.value);
    return ok({ view: view.value, replayed: false });
  });
  if (cancelledNow) {
    (deps.telemetry ?? noTelemetry).holdOutcome("cancelled");
    notifyRelays(deps.db);
    await withdrawHoldExpiry(deps, reservationId);
    if (result.ok) await releaseSeatLocks(deps, lockedSeatsOf(result.value.view));
  }
  return result;
}
