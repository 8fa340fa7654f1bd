import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { fail, ok, type Result } from "./errors.ts";
import { fromCents } from "./money.ts";
import type { ReservationStatus, ReservationView, ReservedSeatView } from "./views.ts";

/** A reservation as the SQL function `reservation_row` (drizzle/0005) builds it. */
export type ReservationRow = {
  id: string;
  session_id: string;
  user_id: string;
  status: ReservationStatus;
  total_cents: number;
  expires_at: string;
  created_at: string;
  sale_id: string | null;
  sale_amount_cents: number | null;
  sale_paid_at: string | null;
  seats: ReservedSeatView[] | null;
};

/**
 * Reservations with their seats and sale. A PENDING hold whose time is up reads EXPIRED here,
 * whether or not the sweeper has run yet. The row is built by the database function
 * `reservation_row`; holds and payments build the same view in the service (hold.ts,
 * pay-statement.ts), and the group-commit tests compare their answers with what this reads.
 */
async function selectReservations(db: Executor, where: SQL, limit: number): Promise<ReservationView[]> {
  const rows = await queryRows<{ reservation: ReservationRow }>(
    db,
    sql`
      SELECT reservation_row(r) AS reservation
      FROM reservations r
      WHERE ${where}
      ORDER BY r.created_at DESC, r.id
      LIMIT ${limit}`,
  );
  return rows.map((row) => toReservationView(row.reservation));
}

export function toReservationView(row: ReservationRow): ReservationView {
  const seats = row.seats ?? [];
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    status: row.status,
    seatIds: seats.map((seat) => seat.id),
    seats,
    totalPrice: fromCents(Number(row.total_cents)),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    sale:
      row.sale_id && row.sale_paid_at
        ? { id: row.sale_id, amount: fromCents(Number(row.sale_amount_cents)), paidAt: row.sale_paid_at }
        : null,
  };
}

/** A reservation; with `ownerId`, one of another user reads as not found, so ids cannot be probed. */
export async function getReservation(
  db: Executor,
  reservationId: string,
  ownerId?: string,
): Promise<Result<ReservationView>> {
  const where =
    ownerId === undefined
      ? sql`r.id = ${reservationId}::uuid`
      : sql`r.id = ${reservationId}::uuid AND r.user_id = ${ownerId}`;
  const [reservation] = await selectReservations(db, where, 1);
  return reservation ? ok(reservation) : fail({ code: "RESERVATION_NOT_FOUND", reservationId });
}

export async function listUserReservations(
  db: Executor,
  userId: string,
  limit: number,
): Promise<ReservationView[]> {
  return selectReservations(db, sql`r.user_id = ${userId}`, limit);
}

export type LockedReservation = {
  id: string;
  sessionId: string;
  userId: string;
  status: ReservationStatus;
  live: boolean;
  seatIds: string[];
};

/**
 * Locks a reservation row for the rest of the transaction, so concurrent payments, cancellations
 * and the sweeper take turns. `live` is judged on the clock once the lock is ours, not at
 * transaction start: computed beside `FOR UPDATE` it would be read before a wait for the lock.
 */
export async function lockReservation(
  tx: Executor,
  reservationId: string,
): Promise<LockedReservation | undefined> {
  const [row] = await queryRows<{
    id: string;
    session_id: string;
    user_id: string;
    status: ReservationStatus;
    live: boolean;
    seat_ids: string[];
  }>(
    tx,
    sql`
      WITH locked AS MATERIALIZED (
        SELECT id, session_id, user_id, status, expires_at FROM reservations
        WHERE id = ${reservationId}::uuid FOR UPDATE)
      SELECT r.id, r.session_id, r.user_id, r.status, r.expires_at > clock_timestamp() AS live,
        ARRAY(SELECT rs.seat_id::text FROM reservation_seats rs WHERE rs.reservation_id = r.id ORDER BY rs.seat_id) AS seat_ids
      FROM locked r`,
  );
  if (!row) return undefined;
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    status: row.status,
    live: row.live,
    seatIds: row.seat_ids,
  };
}
