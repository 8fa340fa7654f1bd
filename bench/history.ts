import pg from "pg";
import { type BenchContext, createSession } from "./scenarios.ts";

/**
 * Fills the service's database with a past: `claims` seat claims of sessions that have already
 * played (10,000-seat sessions, every seat claimed, two seats a reservation). The sessions are
 * created through the API, as any session is; their claims, reservations and sales are written
 * with SQL. Three of four reservations were paid (a sale, claims that never end), one of four
 * expired (claims in the past): what months of a busy cinema leave behind.
 */
export async function seedHistory(
  ctx: BenchContext,
  databaseUrl: string,
  claims: number,
): Promise<{ sessions: number; claims: number }> {
  const rows = Math.min(100, Math.max(1, Math.ceil(claims / 100)));
  const sessions = Math.ceil(claims / (rows * 100));
  // A connection of its own, closed before the measured phase: the CPU of PostgreSQL's backends
  // is read per process, and a backend that did the seed must not end in the middle of it.
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await seed(ctx, db, sessions, rows);
  } finally {
    await db.end();
  }
  return { sessions, claims: sessions * rows * 100 };
}

async function seed(ctx: BenchContext, db: pg.Client, sessions: number, rows: number): Promise<void> {
  for (let i = 0; i < sessions; i++) {
    const session = await createSession(ctx, rows, 100);
    await db.query(
      `WITH played AS (
         UPDATE sessions SET starts_at = now() - make_interval(days => 1 + $2::int) WHERE id = $1::uuid
         RETURNING id, starts_at
       ), pair AS (
         SELECT gen_random_uuid() AS reservation_id, a.session_id, a.id AS seat_a, b.id AS seat_b, a.position,
           played.starts_at - interval '1 day' AS created, (a.position % 8) = 1 AS expired
         FROM played
         JOIN seats a ON a.session_id = played.id
         JOIN seats b ON b.session_id = played.id AND b.position = a.position + 1
         WHERE a.position % 2 = 1
       ), reservation AS (
         INSERT INTO reservations (id, session_id, user_id, status, total_cents, expires_at, created_at, updated_at)
         SELECT reservation_id, session_id, 'past-' || (position % 5000),
           CASE WHEN expired THEN 'EXPIRED' ELSE 'CONFIRMED' END, 2500,
           created + interval '30 seconds', created, created
         FROM pair RETURNING id
       ), sale AS (
         INSERT INTO sales (reservation_id, user_id, session_id, amount_cents, paid_at)
         SELECT reservation_id, 'past-' || (position % 5000), session_id, 2500, created + interval '10 seconds'
         FROM pair WHERE NOT expired RETURNING id
       )
       INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
       SELECT reservation_id, seat, session_id,
         CASE WHEN expired THEN tstzrange(created, created + interval '30 seconds')
              ELSE tstzrange(created, 'infinity') END
       FROM pair, LATERAL (VALUES (seat_a), (seat_b)) AS v(seat)
       ORDER BY seat`,
      [session.id, i],
    );
  }
  await db.query("VACUUM (ANALYZE) sessions, seats, reservations, reservation_seats, sales");
}
