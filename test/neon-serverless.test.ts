import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp } from "./support/app.ts";
import { openNeonTestDatabase } from "./support/neon-database.ts";
import { serviceUrl } from "./support/services.ts";

const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)(
  "the core on neon-serverless (WebSocket Pool through the Neon proxy stand-in)",
  () => {
    let database: Awaited<ReturnType<typeof openNeonTestDatabase>>;
    let app: TestApp;

    beforeAll(async () => {
      database = await openNeonTestDatabase(adminUrl as string);
      app = createTestApp(database.db);
    });
    afterAll(() => database.close());

    it("holds, refuses a conflicting hold, pays and lists the sale", async () => {
      const { seatIds } = await createSessionVia(app);
      const held = await hold(app, "neon-alice", seatIds.slice(0, 2));
      expect(held.status).toBe(201);
      const conflict = await hold(app, "neon-bob", seatIds.slice(1, 3));
      expect(conflict.status).toBe(409);
      expect(conflict.body.seatIds).toEqual([seatIds[1]]);
      const paid = await call(
        app,
        "POST",
        `/reservations/${held.body.id}/pay`,
        {},
        { "idempotency-key": "neon-pay" },
      );
      expect(paid.status).toBe(200);
      const replay = await call(
        app,
        "POST",
        `/reservations/${held.body.id}/pay`,
        {},
        { "idempotency-key": "neon-pay" },
      );
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      const history = await call(app, "GET", "/sales/history/neon-alice");
      expect(history.body).toEqual([expect.objectContaining({ seats: ["A1", "A2"], amount: 25 })]);
      expect(database.proxy.connections()).toBeGreaterThan(0);
    });

    it("keeps interactive transactions whole: 40 buyers of one seat pair, one hold, one claim per seat", async () => {
      const { seatIds } = await createSessionVia(app);
      const pair = seatIds.slice(4, 6);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          hold(app, `neon-buyer-${i}`, i % 2 ? pair : [...pair].reverse()),
        ),
      );
      const statuses = results.map((result) => result.status);
      expect(statuses.filter((status) => status === 201)).toHaveLength(1);
      expect(statuses.filter((status) => status !== 201 && status !== 409)).toEqual([]);
      const claims = await queryRows<{ seat_id: string }>(
        database.db,
        sql`SELECT seat_id FROM reservation_seats WHERE upper(claim) > now() AND seat_id = ANY(${sql.param(pair)}::uuid[])`,
      );
      expect(claims.map((claim) => claim.seat_id).sort()).toEqual([...pair].sort());
    });

    it("rolls a refused transaction back entirely", async () => {
      const { session, seatIds } = await createSessionVia(app);
      const count = async () =>
        (await queryRows<{ n: number }>(database.db, sql`SELECT count(*)::int AS n FROM reservations`))[0]
          ?.n ?? 0;
      const before = await count();
      expect((await hold(app, "neon-first", [seatIds[7] as string])).status).toBe(201);
      const refused = await hold(app, "neon-second", [seatIds[8] as string, seatIds[7] as string]);
      expect(refused.status).toBe(409);
      expect((await count()) - before).toBe(1);
      const map = await call(app, "GET", `/sessions/${session.id}`);
      expect(map.body.seats.find((seat: { id: string }) => seat.id === seatIds[8])?.status).toBe("AVAILABLE");
    });
  },
);
