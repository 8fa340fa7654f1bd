import { sql } from "drizzle-orm";
import { type Executor, queryRows, transactionRetried } from "../db/database.ts";
import { isoTime } from "../db/sql-helpers.ts";
import { appendEvents, notifyRelays } from "../events/outbox.ts";
import type { SeatLock } from "../seat-lock/seat-lock.ts";
import { IDEMPOTENCY_RETENTION_HOURS } from "./idempotency.ts";
import { releaseSeatLocks } from "./seat-locks.ts";

type ExpiredRow = { id: string; session_id: string; user_id: string; expired_at: string; seat_ids: string[] };

/** Which overdue holds one expiry transaction takes: a batch (the sweeper) or one hold (its callback). */
type DueHolds = { batchSize: number } | { reservationId: string };

/**
 * Marks overdue holds EXPIRED and writes their events, in one transaction. A batch skips rows
 * another instance is working on; a single hold waits for its row, so a payment in flight decides
 * first and the re-check then sees its outcome. Nothing is done to seats: an overdue claim's time
 * range is already in the past, so the seat is free for everyone, and a claim taken since by
 * someone else is a different row this never touches. Seat locks are released after the commit,
 * token-checked: a lock someone else took since stays theirs.
 */
async function expireDue(db: Executor, due: DueHolds, seatLock?: SeatLock): Promise<ExpiredRow[]> {
  const pick =
    "reservationId" in due
      ? sql`SELECT id FROM reservations
            WHERE id = ${due.reservationId}::uuid AND status = 'PENDING' AND expires_at <= now()
            FOR UPDATE`
      : sql`SELECT id FROM reservations
            WHERE status = 'PENDING' AND expires_at <= now()
            ORDER BY expires_at
            LIMIT ${due.batchSize}
            FOR UPDATE SKIP LOCKED`;
  const expired = await transactionRetried(db, async (tx) => {
    const expired = await queryRows<ExpiredRow>(
      tx,
      sql`
        WITH due AS (${pick})
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
    return expired;
  });
  if (expired.length > 0) notifyRelays(db);
  await Promise.all(
    expired.map((hold) =>
      releaseSeatLocks({ seatLock }, { sessionId: hold.session_id, seatIds: hold.seat_ids, owner: hold.id }),
    ),
  );
  return expired;
}

/** Expires one batch of overdue holds; returns how many it expired. */
export async function expireOverdueHolds(
  db: Executor,
  batchSize: number,
  seatLock?: SeatLock,
): Promise<number> {
  return (await expireDue(db, { batchSize }, seatLock)).length;
}

/**
 * What became of one hold whose expiry callback arrived: `expired` now, already `settled` (paid,
 * cancelled or expired before), `not-due` yet (the callback came early), or `not-found`.
 */
export type HoldExpiry = "expired" | "settled" | "not-due" | "not-found";

/** Expires one hold if, re-checked under its row lock, it is still PENDING and past its time. */
export async function expireHold(
  db: Executor,
  reservationId: string,
  seatLock?: SeatLock,
): Promise<HoldExpiry> {
  if ((await expireDue(db, { reservationId }, seatLock)).length > 0) return "expired";
  const [row] = await queryRows<{ status: string; due: boolean }>(
    db,
    sql`SELECT status, expires_at <= now() AS due FROM reservations WHERE id = ${reservationId}::uuid`,
  );
  if (!row) return "not-found";
  return row.status === "PENDING" && !row.due ? "not-due" : "settled";
}

/** Expires batches until none is left; returns how many holds it expired. */
export async function expireAllOverdueHolds(
  db: Executor,
  batchSize = 500,
  seatLock?: SeatLock,
): Promise<number> {
  let total = 0;
  for (;;) {
    const expired = await expireOverdueHolds(db, batchSize, seatLock);
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
