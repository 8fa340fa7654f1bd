import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expireAllOverdueHolds } from "../src/booking/expire.ts";
import { noTelemetry } from "../src/booking/telemetry.ts";
import { advisorySeatLock } from "../src/seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../src/seat-lock/failover.ts";
import type { SeatLock, SeatRelease } from "../src/seat-lock/seat-lock.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import { inspectRedis, type LockUnderTest, openLock } from "./support/seat-locks.ts";
import { serviceUrl } from "./support/services.ts";

/** How holds, payments, cancellations and expiry use a Redis seat lock, seen from the API and from Redis. */
describe.skipIf(!serviceUrl("TEST_REDIS_URL"))("holds behind a Redis seat lock", () => {
  let subject: LockUnderTest;
  let database: TestDatabase;
  let redis: Redis;
  let seatLock: SeatLock;
  const releases: SeatRelease[] = [];
  const lockEvents: string[] = [];

  beforeAll(async () => {
    subject = await openLock("redis");
    database = await openTestDatabase(availableDrivers().includes("postgres") ? "postgres" : "pglite");
    redis = inspectRedis();
    const failover = createFailoverSeatLock({
      primary: subject.redisLock as NonNullable<LockUnderTest["redisLock"]>,
      fallback: advisorySeatLock,
      timeoutMs: 2_000,
      cooldownMs: 5_000,
    });
    seatLock = {
      ...failover,
      release: (seats) => {
        releases.push(seats);
        return failover.release(seats);
      },
    };
  });
  afterAll(async () => {
    redis.disconnect();
    await database.close();
    await subject.close();
  });

  function appWith(ttlSeconds = 30): TestApp {
    return createTestApp(database.db, {
      seatLock,
      reservationTtlSeconds: ttlSeconds,
      telemetry: {
        ...noTelemetry,
        lockAcquisition: (backend, result) => lockEvents.push(`${backend}:${result}`),
      },
    });
  }

  const lockKeys = (sessionId: string) => redis.keys(`${subject.keyPrefix}{${sessionId}}:*`);

  it("keeps the lock for the hold's lifetime with its id as owner, and releases it when paid", async () => {
    const app = appWith();
    const { session, seatIds } = await createSessionVia(app);
    const held = await hold(app, "ada", [seatIds[0] as string, seatIds[1] as string]);
    expect(held.status).toBe(201);
    const keys = await lockKeys(session.id);
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(await redis.get(key)).toBe(held.body.id);
      expect(await redis.pttl(key)).toBeGreaterThan(25_000);
    }

    const refused = await hold(app, "bea", [seatIds[1] as string]);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: "SEAT_UNAVAILABLE", seatIds: [seatIds[1]] });

    expect((await call(app, "POST", `/reservations/${held.body.id}/pay`)).status).toBe(200);
    expect(await lockKeys(session.id)).toEqual([]);
    // Sold: the database answers now, and a refused claim leaves no lock behind.
    expect((await hold(app, "bea", [seatIds[1] as string])).status).toBe(409);
    expect(await lockKeys(session.id)).toEqual([]);
  });

  it("releases the lock of a cancelled hold, so the seats can be held again at once", async () => {
    const app = appWith();
    const { session, seatIds } = await createSessionVia(app);
    const held = await hold(app, "cy", [seatIds[0] as string]);
    expect((await call(app, "POST", `/reservations/${held.body.id}/cancel`)).status).toBe(200);
    expect(await lockKeys(session.id)).toEqual([]);
    expect((await hold(app, "dee", [seatIds[0] as string])).status).toBe(201);
  });

  it("replays an idempotent hold whose seats its own lock still holds, and takes nothing new", async () => {
    const app = appWith();
    const { session, seatIds } = await createSessionVia(app);
    const body = [seatIds[0] as string];
    const first = await hold(app, "eve", body, { "idempotency-key": "k-1" });
    expect(first.status).toBe(201);
    const again = await hold(app, "eve", body, { "idempotency-key": "k-1" });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.id).toBe(first.body.id);
    expect((await hold(app, "eve", [seatIds[1] as string], { "idempotency-key": "k-1" })).status).toBe(422);
    const keys = await lockKeys(session.id);
    expect(keys).toHaveLength(1);
    expect(await redis.get(keys[0] as string)).toBe(first.body.id);
  });

  it("turns buyers away at the lock, before the database, while someone else holds the seat", async () => {
    const app = appWith();
    const { seatIds } = await createSessionVia(app);
    await hold(app, "fay", [seatIds[0] as string]);
    lockEvents.length = 0;
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) => hold(app, `g${i}`, [seatIds[0] as string])),
    );
    expect(refused.every((answer) => answer.status === 409)).toBe(true);
    expect(lockEvents).toEqual(Array.from({ length: 20 }, () => "redis:conflict"));
  });

  it("has the sweeper release the locks of the holds it expires", async () => {
    const app = appWith(1);
    const { session, seatIds } = await createSessionVia(app);
    const held = await hold(app, "gus", [seatIds[0] as string, seatIds[1] as string]);
    expect(held.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    releases.length = 0;
    expect(await expireAllOverdueHolds(database.db, 500, seatLock)).toBeGreaterThanOrEqual(1);
    expect(releases).toContainEqual({
      sessionId: session.id,
      seatIds: [...held.body.seatIds].sort(),
      owner: held.body.id,
    });
    expect(await lockKeys(session.id)).toEqual([]);
    expect((await hold(app, "hal", [seatIds[0] as string])).status).toBe(201);
  });
});
