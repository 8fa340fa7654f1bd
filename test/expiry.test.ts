import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { expireAllOverdueHolds } from "../src/booking/expire.ts";
import { queryRows } from "../src/db/database.ts";
import { startSweeper } from "../src/expiry/sweeper.ts";
import { call, createSessionVia, createTestApp, hold, useTestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase } from "./support/database.ts";

const TTL_SECONDS = 1;
const pastTtl = () => new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 150));

describe.each(availableDrivers())("hold expiry on %s", (driver) => {
  const suite = useTestApp(driver, { overrides: { reservationTtlSeconds: TTL_SECONDS } });

  const eventsOf = (reservationId: string) =>
    queryRows<{ type: string; payload: { seatId?: string } }>(
      suite.database.db,
      sql`SELECT type, payload FROM outbox WHERE aggregate_id = ${reservationId}::uuid ORDER BY seq`,
    );

  it("reads EXPIRED, frees the seats, refuses payment, and lets a new buyer hold and pay — before any sweep", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const seats = seatIds.slice(0, 2);
    const first = await hold(suite.app, "late-payer", seats);
    expect(first.status).toBe(201);
    await pastTtl();

    expect((await call(suite.app, "GET", `/reservations/${first.body.id}`)).body.status).toBe("EXPIRED");
    const map = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(map.body.counts.held).toBe(0);
    const pay = await call(suite.app, "POST", `/reservations/${first.body.id}/pay`);
    expect(pay.status).toBe(409);
    expect(pay.body.code).toBe("RESERVATION_EXPIRED");

    const second = await hold(suite.app, "on-time", seats);
    expect(second.status).toBe(201);
    const paid = await call(suite.app, "POST", `/reservations/${second.body.id}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe("CONFIRMED");
  });

  it("a late sweep never touches the seat of the buyer who took it since", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const seat = seatIds[3] as string;
    const a = await hold(suite.app, "buyer-a", [seat]);
    await pastTtl();
    const b = await hold(suite.app, "buyer-b", [seat]);
    expect(b.status).toBe(201);

    const expired = await expireAllOverdueHolds(suite.database.db);
    expect(expired).toBeGreaterThanOrEqual(1);

    expect((await call(suite.app, "GET", `/reservations/${a.body.id}`)).body.status).toBe("EXPIRED");
    expect((await call(suite.app, "GET", `/reservations/${b.body.id}`)).body.status).toBe("PENDING");
    const map = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(map.body.seats[3].status).toBe("HELD");
    const c = await hold(suite.app, "buyer-c", [seat]);
    expect(c.status).toBe(409);
    expect(c.body.seatIds).toEqual([seat]);

    const rows = await queryRows<{ status: string; n: number }>(
      suite.database.db,
      sql`SELECT r.status, count(*)::int AS n FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
          WHERE rs.seat_id = ${seat}::uuid GROUP BY r.status ORDER BY r.status`,
    );
    expect(rows).toEqual([
      { status: "EXPIRED", n: 1 },
      { status: "PENDING", n: 1 },
    ]);

    expect((await eventsOf(a.body.id)).map((event) => event.type)).toEqual([
      "reservation.created",
      "reservation.expired",
      "seat.released",
    ]);
    expect((await eventsOf(b.body.id)).map((event) => event.type)).toEqual(["reservation.created"]);
  });

  it("the sweeper expires overdue holds in batches and never a paid one", async () => {
    // A database of its own, so holds of the tests above cannot expire into this count.
    const own = await openTestDatabase(driver);
    const ownApp = createTestApp(own.db, { reservationTtlSeconds: TTL_SECONDS });
    const { seatIds } = await createSessionVia(ownApp);
    const holds = await Promise.all(
      seatIds.slice(10, 16).map((seat, index) => hold(ownApp, `batch-${index}`, [seat])),
    );
    const paid = holds[0]?.body.id as string;
    expect((await call(ownApp, "POST", `/reservations/${paid}/pay`)).status).toBe(200);
    await pastTtl();
    const swept: number[] = [];
    const sweeper = startSweeper({
      db: own.db,
      intervalMs: 50,
      onError: (error) => {
        throw error;
      },
      onSwept: (count) => swept.push(count),
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    await sweeper.stop();
    expect(swept.reduce((sum, count) => sum + count, 0)).toBe(5);
    expect((await call(ownApp, "GET", `/reservations/${paid}`)).body.status).toBe("CONFIRMED");
    const statuses = await Promise.all(
      holds.slice(1).map((h) => call(ownApp, "GET", `/reservations/${h.body.id}`)),
    );
    expect(statuses.map((s) => s.body.status)).toEqual(Array(5).fill("EXPIRED"));
    await own.close();
  });
});
