import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../db/errors.ts";
import { isoTime } from "../db/sql-helpers.ts";
import { appendEvents } from "../events/outbox.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { withdrawHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { fromCents } from "./money.ts";
import { getReservation, type LockedReservation, lockReservation } from "./reservations.ts";
import { lockedSeatsOf, releaseSeatLocks } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

export type PaymentRequest = { reservationId: string; userId?: string };

/**
 * Turns a live hold into a sale. Payments of one reservation take turns on its row lock, so paying
 * twice (or ten times at once) makes one sale and answers it every time.
 */
export async function payReservation(
  deps: BookingDeps,
  request: PaymentRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { reservationId } = request;
  let paidNow = false;
  try {
    const result = await deps.db.transaction(async (tx): Promise<Result<Outcome<ReservationView>>> => {
      if (idempotency) {
        const key = await takeIdempotencyKey(tx, idempotency);
        if (!key.ok) return key;
        if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
      }
      const reservation = await lockReservation(tx, reservationId);
      if (!reservation) return fail({ code: "RESERVATION_NOT_FOUND", reservationId });
      if (request.userId !== undefined && request.userId !== reservation.userId) {
        return fail({ code: "RESERVATION_NOT_OWNED", reservationId });
      }
      if (reservation.status === "CANCELLED") return fail({ code: "RESERVATION_CANCELLED", reservationId });
      if (reservation.status !== "CONFIRMED") {
        if (reservation.status === "EXPIRED" || !reservation.live) {
          return fail({ code: "RESERVATION_EXPIRED", reservationId });
        }
        await confirm(tx, reservation);
        paidNow = true;
      }
      const view = await getReservation(tx, reservationId);
      if (!view.ok) return view;
      if (idempotency) await rememberResponse(tx, idempotency, view.value);
      return ok({ view: view.value, replayed: false });
    });
    // Counted once committed, and only by the payment that made the sale, not by repeats.
    if (paidNow) (deps.telemetry ?? noTelemetry).holdOutcome("paid");
    if (paidNow) await withdrawHoldExpiry(deps, reservationId);
    // A sold seat is refused by the database; its lock would only delay that answer.
    if (paidNow && result.ok) await releaseSeatLocks(deps, lockedSeatsOf(result.value.view));
    return result;
  } catch (error) {
    if (sqlState(error) === EXCLUSION_VIOLATION) return fail({ code: "RESERVATION_EXPIRED", reservationId });
    throw error;
  }
}

async function confirm(tx: Executor, reservation: LockedReservation): Promise<void> {
  // The claims now last forever; the constraint refuses this if anyone else claimed a seat meanwhile.
  await tx.execute(sql`
    UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity')
    WHERE reservation_id = ${reservation.id}::uuid`);
  await tx.execute(sql`
    UPDATE reservations SET status = 'CONFIRMED', updated_at = now() WHERE id = ${reservation.id}::uuid`);
  const [sale] = await queryRows<{ id: string; paid_at: string }>(
    tx,
    sql`
      INSERT INTO sales (reservation_id, user_id, session_id, amount_cents)
      VALUES (${reservation.id}::uuid, ${reservation.userId}, ${reservation.sessionId}::uuid, ${reservation.totalCents})
      RETURNING id, ${isoTime(sql`paid_at`)} AS paid_at`,
  );
  if (!sale) throw new Error("sale insert returned no row");
  await appendEvents(tx, reservation.id, [
    {
      type: "payment.confirmed",
      data: {
        reservationId: reservation.id,
        saleId: sale.id,
        sessionId: reservation.sessionId,
        userId: reservation.userId,
        seatIds: reservation.seatIds,
        amount: fromCents(reservation.totalCents),
        paidAt: sale.paid_at,
      },
    },
  ]);
}
