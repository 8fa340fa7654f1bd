import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { sql } from "drizzle-orm";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodePostgresDatabase } from "../src/db/node-postgres.ts";
import { memoryCheck } from "../src/entry/node-health.ts";
import type { HealthCheck } from "../src/ports.ts";
import { call, createTestApp } from "./support/app.ts";
import {
  createScratchDatabase,
  dropScratchDatabase,
  openTestDatabase,
  type TestDatabase,
} from "./support/database.ts";
import { freePort } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

const NAMED = ["database", "outbox", "redis", "rabbitmq", "memory"];

describe("/health on a healthy instance", () => {
  it("names every dependency with status and latency, and answers live and ready", async () => {
    const database = await openTestDatabase("pglite");
    try {
      const app = createTestApp(database.db, { healthChecks: [memoryCheck()] });
      const health = await call(app, "GET", "/health");
      expect(health.status).toBe(200);
      expect(health.headers.get("cache-control")).toBe("no-store");
      expect(health.body.status).toBe("ok");
      expect(Object.keys(health.body.checks).sort()).toEqual([...NAMED].sort());
      expect(health.body.checks.database).toMatchObject({ status: "ok", required: true });
      expect(health.body.checks.database.latencyMs).toEqual(expect.any(Number));
      expect(health.body.checks.memory).toMatchObject({ status: "ok", required: false });
      expect(health.body.checks.outbox).toMatchObject({ status: "ok", required: false });
      // Not configured on this instance: named, never counted against it.
      expect(health.body.checks.redis).toMatchObject({ status: "disabled", detail: "not configured" });
      expect(health.body.checks.rabbitmq).toMatchObject({ status: "disabled", detail: "not configured" });
      expect((await call(app, "GET", "/health/live")).body).toEqual({ status: "ok" });
      expect((await call(app, "GET", "/health/ready")).status).toBe(200);
    } finally {
      await database.close();
    }
  });

  it("memory turns degraded, never down, past its threshold, naming what is full", async () => {
    expect(await memoryCheck().check()).toBe("ok");
    expect(await memoryCheck(1e-6).check()).toEqual({ degraded: expect.stringMatching(/JS heap \d+ MB/) });
  });
});

describe("/health reports the outbox on every instance, with or without a relay", () => {
  let database: TestDatabase;
  beforeEach(async () => {
    database = await openTestDatabase("pglite");
  });
  afterEach(() => database.close());

  /** Events written `agoSeconds` ago, published `publishedAgoSeconds` ago when given: real outbox rows. */
  const writeEvents = (count: number, agoSeconds: number, publishedAgoSeconds?: number) =>
    database.db.execute(sql`
      INSERT INTO outbox (type, aggregate_id, payload, occurred_at, published_at)
      SELECT 'reservation.created', gen_random_uuid(), '{}'::jsonb,
        now() - make_interval(secs => ${agoSeconds}),
        ${publishedAgoSeconds === undefined ? null : sql`now() - make_interval(secs => ${publishedAgoSeconds})`}
      FROM generate_series(1, ${count})`);

  it("is ok while events wait less than 60 s, even with no relay anywhere", async () => {
    await writeEvents(3, 10);
    const health = await call(createTestApp(database.db), "GET", "/health");
    expect(health.body.status).toBe("ok");
    expect(health.body.checks.outbox).toMatchObject({ status: "ok", required: false });
  });

  it("turns degraded past 60 s and says no relay is configured when nothing publishes", async () => {
    await writeEvents(31, 122);
    await writeEvents(5, 3_600, 3_500);
    const health = await call(createTestApp(database.db), "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("degraded");
    expect(health.body.checks.outbox).toMatchObject({ status: "degraded", required: false });
    expect(health.body.checks.outbox.detail).toMatch(
      /^31 events pending, oldest 12\d s old: no relay configured \(set AMQP_URL, or run the sidecar/,
    );
  });

  it("says a relay is behind when another process (a sidecar) published since", async () => {
    await writeEvents(2, 90);
    await writeEvents(1, 120, 5);
    const health = await call(createTestApp(database.db), "GET", "/health");
    expect(health.body.status).toBe("degraded");
    expect(health.body.checks.outbox.detail).toMatch(
      /^2 events pending, oldest 9\d s old: a relay published \d s ago and is behind/,
    );
  });

  it("points at the broker when this process runs the relay", async () => {
    await writeEvents(1, 75);
    const app = createTestApp(database.db, { relayInProcess: true });
    const health = await call(app, "GET", "/health");
    expect(health.body.checks.outbox.detail).toMatch(
      /^1 events pending, oldest 7\d s old: the relay cannot keep up or cannot publish \(see rabbitmq\)/,
    );
  });
});

describe("/health when the database is down", () => {
  it("answers 503 (health and ready, not live) when nothing listens on the database port", async () => {
    const port = await freePort();
    const { db, close } = createNodePostgresDatabase(`postgres://postgres:pw@127.0.0.1:${port}/none`, 1);
    try {
      const app = createTestApp(db);
      const health = await call(app, "GET", "/health");
      expect(health.status).toBe(503);
      expect(health.body.status).toBe("down");
      expect(health.body.checks.database).toMatchObject({ status: "down", required: true });
      expect(health.body.checks.database.detail).toMatch(/ECONNREFUSED|connect/i);
      expect((await call(app, "GET", "/health/ready")).status).toBe(503);
      expect((await call(app, "GET", "/health/live")).status).toBe(200);
    } finally {
      await close();
    }
  });

  it("goes from 200 to 503 when the embedded database the test opened is closed", async () => {
    const database = await openTestDatabase("pglite");
    const app = createTestApp(database.db);
    expect((await call(app, "GET", "/health")).status).toBe(200);
    await database.close();
    const health = await call(app, "GET", "/health");
    expect(health.status).toBe(503);
    expect(health.body.checks.database.status).toBe("down");
  });

  const adminUrl = serviceUrl("TEST_DATABASE_URL");
  it.skipIf(!adminUrl)("goes from 200 to 503 when its PostgreSQL database is dropped", async () => {
    const url = await createScratchDatabase(adminUrl as string);
    const { db, close } = createNodePostgresDatabase(url, 2);
    try {
      const app = createTestApp(db);
      expect((await call(app, "GET", "/health")).status).toBe(200);
      await dropScratchDatabase(adminUrl as string, url);
      const health = await call(app, "GET", "/health");
      expect(health.status).toBe(503);
      expect(health.body.checks.database).toMatchObject({ status: "down", required: true });
    } finally {
      await close();
    }
  });
});

const redisServer = spawnSync("redis-server", ["--version"]).status === 0;
if (!redisServer) console.warn("skipped: redis-server is not installed; the degraded /health test needs it.");

describe.skipIf(!redisServer)("/health when an optional dependency stops", () => {
  let server: ChildProcess | undefined;
  const clients: Redis[] = [];
  afterAll(() => {
    for (const client of clients) client.disconnect();
    server?.kill("SIGKILL");
  });

  it("stays 200 but reads degraded, naming the dependency that is down", async () => {
    const port = await freePort();
    server = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const client = new Redis({
      port,
      host: "127.0.0.1",
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => 100,
    });
    clients.push(client);
    // The shape of the seat-lock check: optional, because advisory locks take over when Redis is gone.
    const redis: HealthCheck = {
      name: "redis",
      required: false,
      check: async () => {
        await client.ping();
        return "ok";
      },
    };
    const database = await openTestDatabase("pglite");
    try {
      const app = createTestApp(database.db, { healthChecks: [redis] });
      for (let attempt = 0; attempt < 50 && client.status !== "ready"; attempt++) {
        await client.connect().catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const healthy = await call(app, "GET", "/health");
      expect(healthy.status).toBe(200);
      expect(healthy.body.status).toBe("ok");
      expect(healthy.body.checks.redis).toMatchObject({ status: "ok", required: false });

      const stopped = new Promise((resolve) => server?.once("exit", resolve));
      server.kill("SIGTERM");
      await stopped;
      const degraded = await call(app, "GET", "/health");
      expect(degraded.status).toBe(200);
      expect(degraded.body.status).toBe("degraded");
      expect(degraded.body.checks.redis).toMatchObject({ status: "down", required: false });
      expect(degraded.body.checks.database.status).toBe("ok");
      expect((await call(app, "GET", "/health/ready")).status).toBe(200);
    } finally {
      await database.close();
    }
  });
});
