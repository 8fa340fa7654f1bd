import { sql } from "drizzle-orm";
import { type Executor, queryRows, transactionRetried } from "../db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../db/errors.ts";
import { isoTime } from "../db/sql-helpers.ts";
import { appendEvents, notifyRelays } from "../events/outbox.ts";
import { cancelReservation } from "./cancel.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { rescheduleHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { hideFromOthers } from "./ownership.ts";
import { getReservation, type LockedReservation, lockReservation } from "./reservations.ts";
import { releaseSeatLocks } from "./seat-locks.ts";
import type { ReservationView } from "./views.ts";

export const DEFAULT_HOLD_MAX_SECONDS = 600;

type Owner = { reservationId: string; userId?: string; buyerId?: string };

/**
 * A live hold, locked for the rest of the transaction, or why it cannot be changed: another
 * buyer's (404 to an authenticated buyer), paid, cancelled, or past its time. Liveness is judged
 * once the row lock is ours; the statements that follow judge it again on their own clock, since
 * the hold may run out while they run. Its seats are read after the lock too.
 */
async function lockLiveHold(tx: Executor, request: Owner): Promise<Result<LockedReservation>> {
  const { reservationId } = request;
  const owner = request.buyerId ?? request.userId;
  const reservation = await lockReservation(tx, reservationId);
  if (!reservation) return fail({ code: "RESERVATION_NOT_FOUND", reservationId });
  if (owner !== undefined && owner !== reservation.userId) {
    return hideFromOthers(fail({ code: "RESERVATION_NOT_OWNED", reservationId }), request);
  }
  if (reservation.status === "CONFIRMED") return fail({ code: "RESERVATION_CONFIRMED", reservationId });
  if (reservation.status === "CANCELLED") return fail({ code: "RESERVATION_CANCELLED", reservationId });
  if (reservation.status === "EXPIRED" || !reservation.live) {
    return fail({ code: "RESERVATION_EXPIRED", reservationId });
  }
  // Read again in a statement of its own: the one that waited for the lock saw the seats as they
  // were before the wait, and a concurrent release may have taken one since.
  const [seats] = await queryRows<{ seat_ids: string[] }>(
    tx,
    sql`SELECT ARRAY(SELECT seat_id::text FROM reservation_seats WHERE reservation_id = ${reservationId}::uuid
                     ORDER BY seat_id) AS seat_ids`,
  );
  return ok({ ...reservation, seatIds: seats?.seat_ids ?? [] });
}

/**
 * Extends a live hold so that it ends `seconds` from now, but never more than `holdMaxSeconds`
 * after its creation and never earlier than it already did. Its claims stretch under the
 * exclusion constraint; then its seat locks get the new TTL and its expiry callback moves. This is
 * the one way a hold's end moves later, short of payment. With an idempotency key, the key is taken
 * in the extending transaction, so a retry answers the first extension instead of extending again.
 */
export async function extendHold(
  deps: BookingDeps,
  request: Owner & { seconds: number },
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { reservationId } = request;
  const maxSeconds = deps.holdMaxSeconds ?? DEFAULT_HOLD_MAX_SECONDS;
  let extended: { sessionId: string; seatIds: string[]; ttlMs: number } | undefined;
  try {
    const result = await transactionRetried(
      deps.db,
      async (tx): Promise<Result<Outcome<ReservationView>>> => {
        extended = undefined;
        if (idempotency) {
          const key = await takeIdempotencyKey(tx, idempotency);
          if (!key.ok) return key;
          if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
        }
        const hold = await lockLiveHold(tx, request);
        if (!hold.ok) return hold;
        const [row] = await queryRows<{ expires_at: string; ttl_ms: string; moved: boolean }>(
          tx,
          sql`
          WITH target AS (
            SELECT r.expires_at AS old_end,
              GREATEST(r.expires_at, LEAST(clock_timestamp() + make_interval(secs => ${request.seconds}),
                                           r.created_at + make_interval(secs => ${maxSeconds}))) AS new_end
            FROM reservations r
            WHERE r.id = ${reservationId}::uuid AND r.expires_at > clock_timestamp()
          ), claims AS (
            UPDATE reservation_seats rs SET claim = tstzrange(lower(rs.claim), target.new_end)
            FROM target WHERE rs.reservation_id = ${reservationId}::uuid AND target.new_end > target.old_end
          )
          UPDATE reservations r SET expires_at = target.new_end, updated_at = now()
          FROM target WHERE r.id = ${reservationId}::uuid
          RETURNING ${isoTime(sql`r.expires_at`)} AS expires_at,
            (extract(epoch FROM r.expires_at - clock_timestamp()) * 1000)::bigint::text AS ttl_ms,
            target.new_end > target.old_end AS moved`,
        );
        if (!row) return fail({ code: "RESERVATION_EXPIRED", reservationId });
        if (row.moved) {
          const { sessionId, userId, seatIds } = hold.value;
          await appendEvents(tx, reservationId, [
            {
              type: "reservation.extended",
              data: { reservationId, sessionId, userId, seatIds, expiresAt: row.expires_at },
            },
          ]);
          extended = { sessionId, seatIds, ttlMs: Number(row.ttl_ms) };
        }
        const view = await getReservation(tx, reservationId);
        if (!view.ok) return view;
        if (idempotency) await rememberResponse(tx, idempotency, view.value);
        return ok({ view: view.value, replayed: false });
      },
    );
    if (extended && result.ok) {
      notifyRelays(deps.db);
      const seats = { sessionId: extended.sessionId, seatIds: extended.seatIds, owner: reservationId };
      await deps.seatLock?.extend?.(seats, extended.ttlMs).catch(() => undefined);
      await rescheduleHoldExpiry(deps, { reservationId, expiresAt: result.value.view.expiresAt });
    }
    return result;
  } catch (error) {
    // Only a claim taken after the hold ran out can overlap the stretch: the hold had expired.
    if (sqlState(error) === EXCLUSION_VIOLATION) return fail({ code: "RESERVATION_EXPIRED", reservationId });
    throw error;
  }
}

/**
 * Gives one seat of a live hold back at once; the hold keeps its other seats and its total drops
 * by that seat's price (its category's). Releasing the last seat cancels the hold (a hold of no seats would be
 * neither payable nor useful), and the answer is the CANCELLED reservation.
 */
export async function releaseHeldSeat(
  deps: BookingDeps,
  request: Owner & { seatId: string },
): Promise<Result<ReservationView>> {
  const { reservationId, seatId } = request;
  let released: { sessionId: string } | undefined;
  const result = await transactionRetried(
    deps.db,
    async (tx): Promise<Result<ReservationView> | "last seat"> => {
      released = undefined;
      const hold = await lockLiveHold(tx, request);
      if (!hold.ok) return hold;
      const { sessionId, seatIds } = hold.value;
      if (!seatIds.includes(seatId)) return fail({ code: "SEAT_NOT_IN_RESERVATION", reservationId, seatId });
      if (seatIds.length === 1) return "last seat";
      // The claim goes, so the seat is free at once; judged live on this statement's clock.
      const [row] = await queryRows<{ seat_id: string }>(
        tx,
        sql`
        WITH gone AS (
          DELETE FROM reservation_seats
          WHERE reservation_id = ${reservationId}::uuid AND seat_id = ${seatId}::uuid
            AND upper(claim) > clock_timestamp()
          RETURNING seat_id
        ), total AS (
          UPDATE reservations r SET total_cents = r.total_cents - (SELECT price_cents FROM seats WHERE id = ${seatId}::uuid),
            updated_at = now()
          WHERE r.id = ${reservationId}::uuid AND EXISTS (SELECT 1 FROM gone)
        )
        SELECT seat_id::text FROM gone`,
      );
      if (!row) return fail({ code: "RESERVATION_EXPIRED", reservationId });
      await appendEvents(tx, reservationId, [
        { type: "seat.released", data: { seatId, sessionId, reservationId, reason: "released" } },
      ]);
      released = { sessionId };
      return getReservation(tx, reservationId);
    },
  );
  // Cancelled under a row lock of its own, where liveness and ownership are judged again.
  if (result === "last seat") {
    const cancelled = await cancelReservation(deps, request);
    return cancelled.ok ? ok(cancelled.value.view) : cancelled;
  }
  if (released && result.ok) {
    notifyRelays(deps.db);
    await releaseSeatLocks(deps, { sessionId: released.sessionId, seatIds: [seatId], owner: reservationId });
  }
  return result;
}
