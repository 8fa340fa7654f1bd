import { sql } from "drizzle-orm";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtVerifier } from "../src/auth/jwt-verifier.ts";
import { queryRows } from "../src/db/database.ts";
import { parseEnv } from "../src/env.ts";
import { qstashHoldExpiry } from "../src/expiry/qstash.ts";
import { seatLockKey } from "../src/seat-lock/seat-lock.ts";
import { createTcpRedisSeatLock } from "../src/seat-lock/tcp-redis.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp, useTestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import { type QStashStandIn, startQStashStandIn } from "./support/qstash-stand-in.ts";
import { serviceUrl } from "./support/services.ts";
import { signHs256 } from "./support/tokens.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(availableDrivers())("extending a hold on %s", (driver) => {
  const suite = useTestApp(driver, { overrides: { reservationTtlSeconds: 30, holdMaxSeconds: 120 } });
  const claimEnds = async (reservationId: string) =>
    (
      await queryRows<{ ends: string }>(
        suite.database.db,
        sql`SELECT to_char(upper(claim) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ends
            FROM reservation_seats WHERE reservation_id = ${reservationId}::uuid`,
      )
    ).map((row) => row.ends);

  it("moves the hold's end and its claims to `seconds` from now, and writes reservation.extended", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "alice", [seatIds[0] as string, seatIds[1] as string]);
    const before = Date.now();
    const extended = await call(suite.app, "POST", `/reservations/${held.body.id}/extend`, { seconds: 90 });
    expect(extended.status).toBe(200);
    expect(extended.body.status).toBe("PENDING");
    const ends = Date.parse(extended.body.expiresAt);
    expect(ends).toBeGreaterThanOrEqual(before + 89_000);
    expect(ends).toBeGreaterThan(Date.parse(held.body.expiresAt));
    expect(await claimEnds(held.body.id)).toEqual([extended.body.expiresAt, extended.body.expiresAt]);
    const events = await queryRows<{ payload: { expiresAt: string; seatIds: string[] } }>(
      suite.database.db,
      sql`SELECT payload FROM outbox WHERE aggregate_id = ${held.body.id}::uuid AND type = 'reservation.extended'`,
    );
    expect(events.map((event) => event.payload.expiresAt)).toEqual([extended.body.expiresAt]);
    expect((await call(suite.app, "GET", `/reservations/${held.body.id}`)).body.expiresAt).toBe(
      extended.body.expiresAt,
    );
  });

  it("is capped at HOLD_MAX_SECONDS after creation and never shortens a hold", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "bob", [seatIds[2] as string]);
    const capped = await call(suite.app, "POST", `/reservations/${held.body.id}/extend`, { seconds: 3_600 });
    expect(capped.status).toBe(200);
    expect(Date.parse(capped.body.expiresAt) - Date.parse(held.body.createdAt)).toBe(120_000);
    const again = await call(suite.app, "POST", `/reservations/${held.body.id}/extend`, { seconds: 3_600 });
    expect(again.body.expiresAt).toBe(capped.body.expiresAt);
    const shorter = await call(suite.app, "POST", `/reservations/${held.body.id}/extend`, { seconds: 1 });
    expect(shorter.status).toBe(200);
    expect(shorter.body.expiresAt).toBe(capped.body.expiresAt);
    expect(await claimEnds(held.body.id)).toEqual([capped.body.expiresAt]);
  });

  it("answers 409 for a paid or cancelled hold, 403 to another user, 404 for none, 400 for bad seconds", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const paid = await hold(suite.app, "carol", [seatIds[3] as string]);
    await call(suite.app, "POST", `/reservations/${paid.body.id}/pay`);
    const onPaid = await call(suite.app, "POST", `/reservations/${paid.body.id}/extend`, { seconds: 60 });
    expect([onPaid.status, onPaid.body.code]).toEqual([409, "RESERVATION_CONFIRMED"]);

    const cancelled = await hold(suite.app, "carol", [seatIds[4] as string]);
    await call(suite.app, "POST", `/reservations/${cancelled.body.id}/cancel`);
    const onCancelled = await call(suite.app, "POST", `/reservations/${cancelled.body.id}/extend`, {
      seconds: 60,
    });
    expect([onCancelled.status, onCancelled.body.code]).toEqual([409, "RESERVATION_CANCELLED"]);

    const mine = await hold(suite.app, "carol", [seatIds[5] as string]);
    const theirs = await call(suite.app, "POST", `/reservations/${mine.body.id}/extend`, {
      seconds: 60,
      userId: "mallory",
    });
    expect([theirs.status, theirs.body.code]).toEqual([403, "RESERVATION_NOT_OWNED"]);
    expect((await call(suite.app, "GET", `/reservations/${mine.body.id}`)).body.expiresAt).toBe(
      mine.body.expiresAt,
    );

    const none = await call(suite.app, "POST", `/reservations/${crypto.randomUUID()}/extend`, {
      seconds: 60,
    });
    expect(none.status).toBe(404);
    for (const body of [{ seconds: 0 }, { seconds: 1.5 }, { seconds: "60" }, {}, { seconds: 60, extra: 1 }]) {
      expect((await call(suite.app, "POST", `/reservations/${mine.body.id}/extend`, body)).status).toBe(400);
    }
  });
});

describe.each(availableDrivers())("extending a short hold on %s", (driver) => {
  const suite = useTestApp(driver, { overrides: { reservationTtlSeconds: 1 } });

  it("an extended hold outlives its first term; an expired one answers 409 and stays expired", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const kept = await hold(suite.app, "dave", [seatIds[0] as string]);
    const lapsed = await hold(suite.app, "erin", [seatIds[1] as string]);
    expect(
      (await call(suite.app, "POST", `/reservations/${kept.body.id}/extend`, { seconds: 30 })).status,
    ).toBe(200);
    await sleep(1_200);
    const late = await call(suite.app, "POST", `/reservations/${lapsed.body.id}/extend`, { seconds: 30 });
    expect([late.status, late.body.code]).toEqual([409, "RESERVATION_EXPIRED"]);
    const map = await call(suite.app, "GET", `/sessions/${session.id}/seats`);
    expect(map.body.seats.slice(0, 2).map((seat: { status: string }) => seat.status)).toEqual([
      "HELD",
      "AVAILABLE",
    ]);
    expect((await hold(suite.app, "frank", [seatIds[0] as string])).status).toBe(409);
    expect((await hold(suite.app, "frank", [seatIds[1] as string])).status).toBe(201);
    const paid = await call(suite.app, "POST", `/reservations/${kept.body.id}/pay`);
    expect(paid.body.status).toBe("CONFIRMED");
  });
});

describe.each(availableDrivers())("releasing one seat of a hold on %s", (driver) => {
  const suite = useTestApp(driver);

  it("frees the seat at once, keeps the others, and the total and the sale follow", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "gina", seatIds.slice(0, 3));
    expect(held.body.totalPrice).toBe(37.5);
    const released = await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${seatIds[1]}`);
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({
      status: "PENDING",
      totalPrice: 25,
      expiresAt: held.body.expiresAt,
    });
    expect(released.body.seatIds.sort()).toEqual([seatIds[0], seatIds[2]].sort());
    const map = await call(suite.app, "GET", `/sessions/${session.id}/seats`);
    expect(map.body.seats.slice(0, 3).map((seat: { status: string }) => seat.status)).toEqual([
      "HELD",
      "AVAILABLE",
      "HELD",
    ]);
    expect((await hold(suite.app, "hugo", [seatIds[1] as string])).status).toBe(201);
    const events = await queryRows<{ payload: { seatId: string; reason: string } }>(
      suite.database.db,
      sql`SELECT payload FROM outbox WHERE aggregate_id = ${held.body.id}::uuid AND type = 'seat.released'`,
    );
    expect(events.map((event) => event.payload)).toEqual([
      expect.objectContaining({ seatId: seatIds[1], reason: "released" }),
    ]);
    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(paid.body.sale.amount).toBe(25);
    expect(paid.body.seats).toHaveLength(2);
  });

  it("releasing the last seat cancels the hold", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "ivy", [seatIds[6] as string]);
    const released = await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${seatIds[6]}`);
    expect(released.status).toBe(200);
    expect(released.body.status).toBe("CANCELLED");
    expect((await hold(suite.app, "jack", [seatIds[6] as string])).status).toBe(201);
  });

  it("refuses a seat the hold does not have (404), a paid hold (409) and another user (403)", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "kim", seatIds.slice(10, 12));
    const notIn = await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${seatIds[13]}`);
    expect([notIn.status, notIn.body.code]).toEqual([404, "SEAT_NOT_IN_RESERVATION"]);
    const other = await call(
      suite.app,
      "DELETE",
      `/reservations/${held.body.id}/seats/${seatIds[10]}?userId=lee`,
    );
    expect([other.status, other.body.code]).toEqual([403, "RESERVATION_NOT_OWNED"]);
    await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    const paid = await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${seatIds[10]}`);
    expect([paid.status, paid.body.code]).toEqual([409, "RESERVATION_CONFIRMED"]);
    expect((await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/nope`)).status).toBe(400);
  });
});

describe.skipIf(!availableDrivers().includes("postgres"))("releasing seats concurrently on postgres", () => {
  const suite = useTestApp("postgres");

  it("two releases of a two-seat hold at once: one seat goes, then the last cancels the hold", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "max", seatIds.slice(0, 2));
    const answers = await Promise.all(
      seatIds
        .slice(0, 2)
        .map((seatId) => call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${seatId}`)),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(answers.map((answer) => answer.body.status).sort()).toEqual(["CANCELLED", "PENDING"]);
    const claims = await queryRows<{ live: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS live FROM reservation_seats
          WHERE reservation_id = ${held.body.id}::uuid AND claim && tstzrange(now(), 'infinity')`,
    );
    expect(claims[0]?.live).toBe(0);
  });
});

describe("HOLD_MAX_SECONDS", () => {
  it("defaults to 600 and may not be shorter than RESERVATION_TTL_SECONDS", () => {
    expect(parseEnv({}).holdMaxSeconds).toBe(600);
    expect(parseEnv({ HOLD_MAX_SECONDS: "900" }).holdMaxSeconds).toBe(900);
    expect(() => parseEnv({ HOLD_MAX_SECONDS: "20", RESERVATION_TTL_SECONDS: "30" })).toThrow(
      /HOLD_MAX_SECONDS/,
    );
    expect(() => parseEnv({ HOLD_MAX_SECONDS: "soon" })).toThrow(/HOLD_MAX_SECONDS/);
  });
});

describe.skipIf(!serviceUrl("TEST_REDIS_URL") || !availableDrivers().includes("postgres"))(
  "an extension moves the seat lock's TTL and the QStash callback",
  () => {
    let database: TestDatabase;
    let qstash: QStashStandIn;
    let redis: Redis;
    let app: TestApp;
    const keyPrefix = `test-extend:${crypto.randomUUID().slice(0, 8)}:`;
    const lock = createTcpRedisSeatLock({
      url: serviceUrl("TEST_REDIS_URL") as string,
      timeoutMs: 2_000,
      keyPrefix,
    });
    beforeAll(async () => {
      database = await openTestDatabase("postgres");
      qstash = await startQStashStandIn({ retryDelayMs: 300 });
      redis = new Redis(serviceUrl("TEST_REDIS_URL") as string);
      await lock.connect();
      const holdExpiry = qstashHoldExpiry(
        {
          url: qstash.url,
          token: qstash.token,
          currentSigningKey: qstash.currentSigningKey,
          nextSigningKey: qstash.nextSigningKey,
          publicBaseUrl: "http://127.0.0.1:9",
        },
        { onError: () => {}, timeoutMs: 1_000 },
      );
      app = createTestApp(database.db, { reservationTtlSeconds: 30, seatLock: lock, holdExpiry });
    });
    afterAll(async () => {
      await lock.close();
      redis.disconnect();
      await qstash.close();
      await database.close();
    });

    it("the lock's keys get the new TTL; a new callback at the new end replaces the withdrawn old one", async () => {
      const { session, seatIds } = await createSessionVia(app);
      const held = await hold(app, "nina", [seatIds[0] as string]);
      const key = seatLockKey(keyPrefix, session.id, seatIds[0] as string);
      expect(await redis.pttl(key)).toBeLessThanOrEqual(30_000);
      const first = qstash.messages.find((message) => message.deduplicationId === held.body.id);
      expect(first?.state).toBe("pending");

      const extended = await call(app, "POST", `/reservations/${held.body.id}/extend`, { seconds: 300 });
      expect(extended.status).toBe(200);
      expect(await redis.pttl(key)).toBeGreaterThan(290_000);
      expect(await redis.get(key)).toBe(held.body.id);
      const endsAt = Date.parse(extended.body.expiresAt);
      const second = qstash.messages.find(
        (message) => message.deduplicationId === `${held.body.id}-${endsAt}`,
      );
      expect(second?.state).toBe("pending");
      expect(second?.notBefore ?? 0).toBeGreaterThanOrEqual(endsAt - 1_000);
      expect(first?.state).toBe("cancelled");
      const [row] = await queryRows<{ expiry_message_id: string }>(
        database.db,
        sql`SELECT expiry_message_id FROM reservations WHERE id = ${held.body.id}::uuid`,
      );
      expect(row?.expiry_message_id).toBe(second?.messageId);
    });
  },
);

describe("extend, release and best available with auth on", () => {
  const SECRET = "a-test-secret-of-at-least-32-characters!";
  const config = {
    issuer: "https://issuer.test/",
    audience: "seats",
    rolesClaim: "roles",
    clockSkewSeconds: 30,
  };
  const suite = useTestApp("pglite", {
    overrides: { auth: createJwtVerifier({ ...config, secret: SECRET }) },
  });
  const token = async (sub: string, roles: string[] = []) => ({
    authorization: `Bearer ${await signHs256(SECRET, { sub, roles, iss: config.issuer, aud: config.audience })}`,
  });

  it("only the token's buyer extends or releases a hold; to another buyer it does not exist (404)", async () => {
    const organiser = await token("olga", ["organizer"]);
    const [alice, bob] = [await token("alice"), await token("bob")];
    const created = await call(
      suite.app,
      "POST",
      "/sessions",
      { movieId: "m", room: "R", startsAt: "2026-12-24T20:00:00Z", price: 10, rowsCount: 2, seatsPerRow: 4 },
      organiser,
    );
    const sessionId = created.body.id as string;
    const held = await call(suite.app, "POST", "/reservations", { sessionId, quantity: 3 }, alice);
    expect(held.status).toBe(201);
    expect(held.body.userId).toBe("alice");
    const [first, second] = held.body.seatIds as string[];

    for (const headers of [bob, {}]) {
      const extend = await call(
        suite.app,
        "POST",
        `/reservations/${held.body.id}/extend`,
        { seconds: 60 },
        headers,
      );
      const release = await call(
        suite.app,
        "DELETE",
        `/reservations/${held.body.id}/seats/${first}`,
        undefined,
        headers,
      );
      const expected = "authorization" in headers ? [404, "RESERVATION_NOT_FOUND"] : [401, "UNAUTHENTICATED"];
      expect([extend.status, extend.body.code]).toEqual(expected);
      expect([release.status, release.body.code]).toEqual(expected);
    }
    const named = await call(
      suite.app,
      "POST",
      `/reservations/${held.body.id}/extend`,
      { seconds: 60, userId: "bob" },
      alice,
    );
    expect([named.status, named.body.code]).toEqual([403, "USER_MISMATCH"]);

    const extended = await call(
      suite.app,
      "POST",
      `/reservations/${held.body.id}/extend`,
      { seconds: 60 },
      alice,
    );
    expect(extended.status).toBe(200);
    const released = await call(
      suite.app,
      "DELETE",
      `/reservations/${held.body.id}/seats/${second}`,
      undefined,
      alice,
    );
    expect(released.status).toBe(200);
    expect(released.body.seatIds).toHaveLength(2);
  });
});

describe.skipIf(!availableDrivers().includes("postgres"))(
  "extending or releasing at the expiry instant on PostgreSQL",
  () => {
    const suite = useTestApp("postgres", { overrides: { reservationTtlSeconds: 1 } });
    const until = async (condition: () => Promise<boolean>) => {
      while (!(await condition())) await sleep(20);
    };
    const one = async <T>(query: ReturnType<typeof sql>) => (await queryRows<T>(suite.database.db, query))[0];

    /**
     * A live hold whose row lock another transaction holds (a payment in flight, say); `change`
     * is sent while the hold is live, waits for that lock, and the lock goes only once the hold's
     * time is up.
     */
    async function changeAcrossExpiry(
      change: (reservationId: string, seatIds: string[]) => Promise<unknown>,
    ) {
      const { seatIds } = await createSessionVia(suite.app, { rowsCount: 1, seatsPerRow: 4 });
      const held = await hold(suite.app, "ann", seatIds.slice(0, 2));
      const holder = new pg.Client({ connectionString: suite.database.url });
      await holder.connect();
      try {
        await holder.query("BEGIN");
        await holder.query("SELECT id FROM reservations WHERE id = $1 FOR UPDATE", [held.body.id]);
        const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
        const answer = change(held.body.id, seatIds);
        await until(
          async () =>
            (
              await one<{ n: number }>(
                sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`,
              )
            )?.n === 1,
        );
        await until(
          async () =>
            (
              await one<{ past: boolean }>(
                sql`SELECT expires_at <= clock_timestamp() AS past FROM reservations WHERE id = ${held.body.id}::uuid`,
              )
            )?.past === true,
        );
        await holder.query("COMMIT");
        return {
          reservationId: held.body.id as string,
          expiresAt: held.body.expiresAt as string,
          answer: await answer,
        };
      } finally {
        await holder.end();
      }
    }

    it("an extension that waited for the row lock past the hold's end answers 409 and moves no claim", async () => {
      const { reservationId, expiresAt, answer } = await changeAcrossExpiry((id) =>
        call(suite.app, "POST", `/reservations/${id}/extend`, { seconds: 60 }),
      );
      expect(answer).toMatchObject({ status: 409, body: { code: "RESERVATION_EXPIRED" } });
      const row = await one<{ expires_at: string; moved: number }>(
        sql`SELECT to_char(r.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS expires_at,
              (SELECT count(*)::int FROM reservation_seats rs WHERE rs.reservation_id = r.id AND upper(rs.claim) <> r.expires_at) AS moved
            FROM reservations r WHERE r.id = ${reservationId}::uuid`,
      );
      expect(row).toEqual({ expires_at: expiresAt, moved: 0 });
    });

    it("a release that waited for the row lock past the hold's end answers 409 and removes nothing", async () => {
      const { reservationId, answer } = await changeAcrossExpiry((id, seatIds) =>
        call(suite.app, "DELETE", `/reservations/${id}/seats/${seatIds[0]}`),
      );
      expect(answer).toMatchObject({ status: 409, body: { code: "RESERVATION_EXPIRED" } });
      const row = await one<{ seats: number; total_cents: number }>(
        sql`SELECT (SELECT count(*)::int FROM reservation_seats WHERE reservation_id = r.id) AS seats, r.total_cents
            FROM reservations r WHERE r.id = ${reservationId}::uuid`,
      );
      expect(row).toEqual({ seats: 2, total_cents: 2500 });
    });
  },
);
