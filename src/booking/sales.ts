import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { isoTime } from "../db/sql-helpers.ts";
import { fromCents } from "./money.ts";
import type { PurchaseView } from "./views.ts";

type PurchaseRow = {
  sale_id: string;
  reservation_id: string;
  session_id: string;
  movie_id: string;
  room: string;
  starts_at: string;
  seats: string[];
  amount_cents: number;
  paid_at: string;
};

/** A buyer's confirmed purchases, newest first, with the session and the seat labels. */
export async function salesHistory(db: Executor, userId: string, limit: number): Promise<PurchaseView[]> {
  const rows = await queryRows<PurchaseRow>(
    db,
    sql`
      SELECT sa.id AS sale_id, sa.reservation_id, se.id AS session_id, se.movie_id, se.room,
        ${isoTime(sql`se.starts_at`)} AS starts_at, sa.amount_cents, ${isoTime(sql`sa.paid_at`)} AS paid_at,
        ARRAY(SELECT st.label FROM reservation_seats rs JOIN seats st ON st.id = rs.seat_id
              WHERE rs.reservation_id = sa.reservation_id ORDER BY st.position) AS seats
      FROM sales sa JOIN sessions se ON se.id = sa.session_id
      WHERE sa.user_id = ${userId}
      ORDER BY sa.paid_at DESC, sa.id
      LIMIT ${limit}`,
  );
  return rows.map((row) => ({
    saleId: row.sale_id,
    reservationId: row.reservation_id,
    session: { id: row.session_id, movieId: row.movie_id, room: row.room, startsAt: row.starts_at },
    seats: row.seats,
    amount: fromCents(Number(row.amount_cents)),
    paidAt: row.paid_at,
  }));
}
