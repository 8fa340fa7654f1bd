import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../src/db/errors.ts";
import { call, createSessionVia, hold, useTestApp } from "./support/app.ts";
import { availableDrivers, type TestDatabase } from "./support/database.ts";

/** Seats claimed by more than one live claim right now: must always be empty. */
const doubleClaims = (database: TestDatabase) =>
  queryRows<{ seat_id: string; n: number }>(
    database.db,
    sql`SELECT seat_id, count(*)::int AS n FROM reservation_seats WHERE upper(claim) > now()
        GROUP BY seat_id HAVING count(*) > 1`,
  );

describe.each(availableDrivers())("the database refuses a double claim on %s", (driver) => {
  const suite = useTestApp(driver);

  it("even when application code skips every check", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "first", [seatIds[0] as string]);
    expect(held.status).toBe(201);
    const sneak = suite.database.db.execute(sql`
      WITH r AS (
        INSERT INTO reservations (session_id, user_id, total_cents, expires_at)
        VALUES (${held.body.sessionId}::uuid, 'sneaky', 0, now() + interval '30 seconds') RETURNING id, expires_at)
      INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
      SELECT r.id, ${seatIds[0]}::uuid, ${held.body.sessionId}::uuid, tstzrange(now(), r.expires_at) FROM r`);
    const error = await sneak.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(sqlState(error)).toBe(EXCLUSION_VIOLATION);
    expect(await doubleClaims(suite.database)).toEqual([]);
  });
});

// PGlite runs one transaction at a time; contention needs a real server.
const contended = availableDrivers().includes("postgres") ? describe : describe.skip;

contended("concurrent buyers on PostgreSQL", () => {
  const suite = useTestApp("postgres", { poolSize: 20 });

  it("50 requests for the same two seats in both orders: exactly one 201, no 5xx, no deadlock", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const [a, b] = seatIds as [string, string];
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        hold(suite.app, `buyer-${index}`, index % 2 ? [a, b] : [b, a]),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(49);
    for (const refused of responses.filter((response) => response.status === 409)) {
      expect(refused.body.code).toBe("SEAT_UNAVAILABLE");
    }
    const claims = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM reservation_seats WHERE seat_id IN (${a}::uuid, ${b}::uuid)`,
    );
    expect(claims[0]?.n).toBe(2);
    expect(await doubleClaims(suite.database)).toEqual([]);
  });

  it("200 buyers over 20 disjoint seat pairs: exactly 20 holds and 40 distinct held seats", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const pairs = Array.from(
      { length: 20 },
      (_, index) => [seatIds[2 * index], seatIds[2 * index + 1]] as string[],
    );
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        hold(suite.app, `pair-buyer-${index}`, pairs[index % 20] as string[]),
      ),
    );
    expect(responses.filter((response) => response.status >= 500)).toEqual([]);
    expect(responses.filter((response) => response.status === 201)).toHaveLength(20);

    const rows = await queryRows<{ holds: number; seats: number; distinct_seats: number }>(
      suite.database.db,
      sql`SELECT count(DISTINCT rs.reservation_id)::int AS holds, count(*)::int AS seats,
                 count(DISTINCT rs.seat_id)::int AS distinct_seats
          FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
          WHERE rs.session_id = ${session.id}::uuid AND r.status = 'PENDING'`,
    );
    expect(rows[0]).toEqual({ holds: 20, seats: 40, distinct_seats: 40 });
    expect(await doubleClaims(suite.database)).toEqual([]);
    const map = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(map.body.counts).toMatchObject({ held: 40, available: 0 });
  });

  it("10 concurrent payments of one hold make one sale and answer it every time", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "payer", seatIds.slice(0, 3));
    const payments = await Promise.all(
      Array.from({ length: 10 }, () => call(suite.app, "POST", `/reservations/${held.body.id}/pay`)),
    );
    expect(payments.map((payment) => payment.status)).toEqual(Array(10).fill(200));
    expect(new Set(payments.map((payment) => payment.body.sale.id)).size).toBe(1);
    const sales = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM sales WHERE reservation_id = ${held.body.id}::uuid`,
    );
    expect(sales[0]?.n).toBe(1);
    const events = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM outbox WHERE aggregate_id = ${held.body.id}::uuid AND type = 'payment.confirmed'`,
    );
    expect(events[0]?.n).toBe(1);
  });

  it("buyers racing over overlapping seat sets never share a seat, and every hold can be paid", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const pool = seatIds.slice(0, 24);
    const responses = await Promise.all(
      Array.from({ length: 120 }, (_, index) => {
        const start = (index * 7) % 22;
        return hold(suite.app, `overlap-${index}`, [
          pool[start],
          pool[start + 1],
          pool[(start + 5) % 24],
        ] as string[]);
      }),
    );
    expect(responses.filter((response) => response.status >= 500)).toEqual([]);
    const winners = responses.filter((response) => response.status === 201);
    expect(winners.length).toBeGreaterThan(0);
    const payments = await Promise.all(
      winners.map((w) => call(suite.app, "POST", `/reservations/${w.body.id}/pay`)),
    );
    expect(payments.map((payment) => payment.status)).toEqual(Array(winners.length).fill(200));
    const totals = await queryRows<{ sold: number; sales: number }>(
      suite.database.db,
      sql`SELECT (SELECT count(*)::int FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
                   WHERE rs.session_id = ${session.id}::uuid AND r.status = 'CONFIRMED') AS sold,
                 (SELECT count(*)::int FROM sales WHERE session_id = ${session.id}::uuid) AS sales`,
    );
    expect(totals[0]).toEqual({ sold: winners.length * 3, sales: winners.length });
    expect(await doubleClaims(suite.database)).toEqual([]);
  });
});
