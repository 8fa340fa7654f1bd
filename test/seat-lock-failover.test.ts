import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { noTelemetry } from "../src/booking/telemetry.ts";
import { advisorySeatLock } from "../src/seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../src/seat-lock/failover.ts";
import type { RedisSeatLock } from "../src/seat-lock/redis-seat-lock.ts";
import type { LockAttempt, SeatClaim } from "../src/seat-lock/seat-lock.ts";
import { createTcpRedisSeatLock, type TcpRedisSeatLock } from "../src/seat-lock/tcp-redis.ts";
import { call, createSessionVia, createTestApp, hold } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import { hasRedisServer, type RedisServer, startRedisServer, waitFor } from "./support/redis-server.ts";
import { freePort } from "./support/server-process.ts";

type Behaviour = "ok" | "error" | "hang";

/** A Redis seat lock whose answers the test decides, counting the calls it gets. */
function scriptedPrimary() {
  const state = { behaviour: "ok" as Behaviour, acquires: 0, releases: 0, pings: 0 };
  const answer = async (_: undefined): Promise<void> => {
    if (state.behaviour === "error") throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
    if (state.behaviour === "hang") await new Promise(() => {});
  };
  const primary: RedisSeatLock = {
    backend: "redis",
    keyedBySession: true,
    acquire: async (claim): Promise<LockAttempt> => {
      state.acquires++;
      await answer(undefined);
      if (claim.seatIds.includes("taken")) return { acquired: false, backend: "redis", seatIds: ["taken"] };
      return { acquired: true, lease: { backend: "redis", transactionLocks: [], release: async () => {} } };
    },
    release: async () => {
      state.releases++;
      await answer(undefined);
    },
    ping: async () => {
      state.pings++;
      await answer(undefined);
    },
  };
  return { primary, state };
}

/** A full Telemetry (for the app) that records the lock events in order. */
function recordingTelemetry() {
  const events: string[] = [];
  return {
    ...noTelemetry,
    events,
    lockAcquisition: (backend: string, result: string) => events.push(`${backend}:${result}`),
    lockFallback: (active: boolean, reason?: string) =>
      events.push(`fallback:${active}${reason ? `:${reason}` : ""}`),
  };
}

const claim = (seatIds = ["a", "b"]): SeatClaim => ({
  sessionId: "s",
  seatIds,
  owner: crypto.randomUUID(),
  ttlMs: 30_000,
});

describe("seat lock failover", () => {
  function setUp() {
    const { primary, state } = scriptedPrimary();
    const telemetry = recordingTelemetry();
    const clock = { now: 1_000_000 };
    const lock = createFailoverSeatLock({
      primary,
      fallback: advisorySeatLock,
      timeoutMs: 50,
      cooldownMs: 5_000,
      telemetry,
      now: () => clock.now,
    });
    return { lock, state, telemetry, clock };
  }

  it("uses Redis while it answers, conflicts included", async () => {
    const { lock, state, telemetry } = setUp();
    const attempt = await lock.acquire(claim());
    expect(attempt.acquired && attempt.lease.backend).toBe("redis");
    expect(await lock.acquire(claim(["taken"]))).toMatchObject({ acquired: false, seatIds: ["taken"] });
    expect(await lock.check()).toBe("ok");
    expect(state.acquires).toBe(2);
    expect(telemetry.events).toEqual([]);
  });

  it("answers the same request from the fallback when Redis errors, and reports degraded with the reason", async () => {
    const { lock, state, telemetry } = setUp();
    state.behaviour = "error";
    const attempt = await lock.acquire(claim());
    expect(attempt.acquired && attempt.lease.backend).toBe("advisory");
    expect(telemetry.events[0]).toBe("redis:error");
    expect(telemetry.events[1]).toMatch(/^fallback:true:redis seat locks failed \(connect ECONNREFUSED/);
    const health = await lock.check();
    expect(health).toMatchObject({ degraded: expect.stringMatching(/ECONNREFUSED.*advisory locks/) });
  });

  it("does not wait longer than the timeout for a Redis that hangs", async () => {
    const { lock, state } = setUp();
    state.behaviour = "hang";
    const started = performance.now();
    const attempt = await lock.acquire(claim());
    expect(attempt.acquired && attempt.lease.backend).toBe("advisory");
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await lock.check()).toMatchObject({ degraded: expect.stringContaining("no answer within 50 ms") });
  });

  it("leaves Redis alone during the cool-down, then lets one request try it again", async () => {
    const { lock, state, telemetry, clock } = setUp();
    state.behaviour = "error";
    await lock.acquire(claim());
    expect(state.acquires).toBe(1);

    for (let i = 0; i < 5; i++) await lock.acquire(claim());
    await lock.release(claim());
    expect(state).toMatchObject({ acquires: 1, releases: 0 });

    clock.now += 5_000;
    state.behaviour = "hang";
    // Two requests arrive together after the cool-down: one probes, the other does not wait for it.
    const [probe, other] = await Promise.all([lock.acquire(claim()), lock.acquire(claim())]);
    expect(state.acquires).toBe(2);
    expect(probe.acquired && probe.lease.backend).toBe("advisory");
    expect(other.acquired && other.lease.backend).toBe("advisory");
    expect(telemetry.events.filter((event) => event.startsWith("fallback:true"))).toHaveLength(1);

    clock.now += 5_000;
    state.behaviour = "ok";
    const back = await lock.acquire(claim());
    expect(back.acquired && back.lease.backend).toBe("redis");
    expect(telemetry.events.at(-1)).toBe("fallback:false");
    expect(await lock.check()).toBe("ok");
    await lock.release(claim());
    expect(state.releases).toBe(1);
  });

  it("notices an outage from a health check, and recovers from one after the cool-down", async () => {
    const { lock, state, telemetry, clock } = setUp();
    state.behaviour = "error";
    expect(await lock.check()).toMatchObject({ degraded: expect.any(String) });
    state.behaviour = "ok";
    expect(await lock.check()).toMatchObject({ degraded: expect.any(String) });
    expect(state.pings).toBe(1);
    clock.now += 5_000;
    expect(await lock.check()).toBe("ok");
    expect(telemetry.events).toEqual([
      "redis:error",
      expect.stringMatching(/^fallback:true/),
      "fallback:false",
    ]);
  });

  it("never throws from release, and a failing release starts the fallback", async () => {
    const { lock, state, telemetry } = setUp();
    state.behaviour = "error";
    await expect(lock.release(claim())).resolves.toBeUndefined();
    expect(telemetry.events[1]).toMatch(/^fallback:true/);
  });
});

describe("failover over a real Redis connection, in the app", () => {
  let database: TestDatabase;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    database = await openTestDatabase("pglite");
  });
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()?.();
  });
  afterAll(() => database.close());

  function failoverOver(tcp: TcpRedisSeatLock, telemetry = recordingTelemetry(), cooldownMs = 5_000) {
    closers.push(() => tcp.close());
    const seatLock = createFailoverSeatLock({
      primary: tcp,
      fallback: advisorySeatLock,
      timeoutMs: 300,
      cooldownMs,
      telemetry,
    });
    const app = createTestApp(database.db, {
      seatLock,
      telemetry,
      healthChecks: [{ name: "redis", required: false, check: () => seatLock.check() }],
    });
    return { app, telemetry };
  }

  it("sells through advisory locks when Redis cannot be reached: never a 5xx, /health degraded", async () => {
    const tcp = createTcpRedisSeatLock({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 300 });
    const { app } = failoverOver(tcp);
    const { seatIds } = await createSessionVia(app);
    const held = await hold(app, "nora", [seatIds[0] as string, seatIds[1] as string]);
    expect(held.status).toBe(201);
    expect((await hold(app, "omar", [seatIds[1] as string])).status).toBe(409);
    expect((await call(app, "POST", `/reservations/${held.body.id}/pay`)).status).toBe(200);

    const health = await call(app, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("degraded");
    expect(health.body.checks.redis).toMatchObject({
      status: "degraded",
      detail: expect.stringMatching(/redis seat locks failed .*advisory locks/),
    });
  });

  it.skipIf(!hasRedisServer())(
    "moves to advisory locks when Redis dies and back once it answers after the cool-down",
    async () => {
      let redis: RedisServer = await startRedisServer();
      closers.push(() => redis.kill());
      const tcp = createTcpRedisSeatLock({ url: redis.url, timeoutMs: 300 });
      await tcp.connect();
      const { app, telemetry } = failoverOver(tcp, recordingTelemetry(), 500);
      const { seatIds } = await createSessionVia(app);
      const seat = (index: number) => [seatIds[index] as string];

      expect((await hold(app, "p1", seat(0))).status).toBe(201);
      expect(telemetry.events).toEqual(["redis:acquired"]);

      await redis.kill();
      expect((await hold(app, "p2", seat(1))).status).toBe(201);
      expect((await hold(app, "p3", seat(1))).status).toBe(409);
      expect(telemetry.events).toContain("redis:error");
      expect((await call(app, "GET", "/health")).body.checks.redis.status).toBe("degraded");

      redis = await startRedisServer(redis.port);
      // ioredis reconnects on its own; the first health check after the cool-down finds it answering.
      await waitFor(
        async () => (await call(app, "GET", "/health")).body.checks.redis.status === "ok",
        10_000,
        "redis back in /health",
      );
      expect(telemetry.events.at(-1)).toBe("fallback:false");
      expect((await hold(app, "p4", seat(2))).status).toBe(201);
      expect(telemetry.events.at(-1)).toBe("redis:acquired");
    },
  );
});
