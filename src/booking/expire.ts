import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { isoTime } from "../db/sql-helpers.ts";
import { appendEvents } from "../events/outbox.ts";
import { IDEMPOTENCY_RETENTION_HOURS } from "./idempotency.ts";

type ExpiredRow = { id: string; session_id: string; user_id: string; expired_at: string; seat_ids: string[] };

/**
 * Marks one batch of overdue holds EXPIRED and writes their events, in one transaction. Rows another
 * instance is working on are skipped, not waited for. Nothing is done to seats: an overdue claim's
 * time range is already in the past, so the seat is free for everyone, and a claim taken since by
 * someone else is a different row this never touches.
 */
export async function expireOverdueHolds(db: Executor, batchSize: number): Promise<number> {
  return db.transaction(async (tx) => {
    const expired = await queryRows<ExpiredRow>(
      tx,
      sql`
        WITH due AS (
          SELECT id FROM reservations
          WHERE status = 'PENDING' AND expires_at <= now()
          ORDER BY expires_at
          LIMIT ${batchSize}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE reservations r SET status = 'EXPIRED', updated_at = now()
        FROM due WHERE r.id = due.id
        RETURNING r.id, r.session_id, r.user_id, ${isoTime(sql`r.expires_at`)} AS expired_at,
          ARRAY(SELECT rs.seat_id::text FROM reservation_seats rs WHERE rs.reservation_id = r.id ORDER BY rs.seat_id) AS seat_ids`,
    );
    for (const hold of expired) {
      const base = { reservationId: hold.id, sessionId: hold.session_id };
      await appendEvents(tx, hold.id, [
        {
          type: "reservation.expired",
          data: { ...base, userId: hold.user_id, seatIds: hold.seat_ids, expiredAt: hold.expired_at },
        },
        ...hold.seat_ids.map((seatId) => ({
          type: "seat.released" as const,
          data: { ...base, seatId, reason: "expired" as const },
        })),
      ]);
    }
    return expired.length;
  });
}

/** Expires batches until none is left; returns how many holds it expired. */
export async function expireAllOverdueHolds(db: Executor, batchSize = 500): Promise<number> {
  let total = 0;
  for (;;) {
    const expired = await expireOverdueHolds(db, batchSize);
    total += expired;
    if (expired < batchSize) return total;
  }
}

/** Forgets idempotency keys older than the retention period. */
export async function pruneIdempotencyKeys(db: Executor): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    sql`WITH gone AS (
          DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ${IDEMPOTENCY_RETENTION_HOURS})
          RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`,
  );
  return rows[0]?.n ?? 0;
}
