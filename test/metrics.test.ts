import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { createPromMetrics, type PromMetrics } from "../src/entry/prom-metrics.ts";
import { startSweeper } from "../src/expiry/sweeper.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import { parseSamples, type Sample, sampleValue } from "./support/prometheus.ts";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function scrape(app: TestApp): Promise<Sample[]> {
  const response = await app.request("/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseSamples(await response.text());
}

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(availableDrivers())("/metrics after a booking flow on %s", (driver) => {
  let database: TestDatabase;
  let metrics: PromMetrics;
  let app: TestApp;
  let shortHolds: TestApp;

  beforeAll(async () => {
    database = await openTestDatabase(driver);
    metrics = createPromMetrics({ db: database.db });
    const deps = { metrics, telemetry: metrics.telemetry };
    app = createTestApp(database.db, deps);
    shortHolds = createTestApp(database.db, { ...deps, reservationTtlSeconds: 1 });
  });
  afterAll(() => database.close());

  it("counts holds by outcome, requests by route template, replays, sweeps and the outbox backlog", async () => {
    const { seatIds } = await createSessionVia(app);
    const [a1, a2, a3, a4, a5] = seatIds as [string, string, string, string, string];

    const paid = await hold(app, "ann", [a1, a2]);
    expect(paid.status).toBe(201);
    expect((await hold(app, "bob", [a2, a3])).status).toBe(409);
    const keyed = await hold(app, "cat", [a3], { "idempotency-key": "k-1" });
    expect(keyed.status).toBe(201);
    const replay = await hold(app, "cat", [a3], { "idempotency-key": "k-1" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await call(app, "POST", `/reservations/${paid.body.id}/pay`)).status).toBe(200);
    expect((await call(app, "POST", `/reservations/${paid.body.id}/pay`)).status).toBe(200);
    const cancelled = await hold(app, "dan", [a4]);
    expect((await call(app, "POST", `/reservations/${cancelled.body.id}/cancel`)).status).toBe(200);
    expect((await call(app, "GET", `/reservations/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call(app, "GET", "/no/such/route")).status).toBe(404);

    expect((await hold(shortHolds, "eve", [a5])).status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const sweepErrors: unknown[] = [];
    const sweeper = startSweeper({
      db: database.db,
      intervalMs: 20,
      telemetry: metrics.telemetry,
      onError: (error) => sweepErrors.push(error),
    });
    try {
      await until(async () => sampleValue(await scrape(app), "holds_total", { outcome: "expired" }) === 1);
    } finally {
      await sweeper.stop();
    }
    expect(sweepErrors).toEqual([]);

    const samples = await scrape(app);
    const holds = (outcome: string) => sampleValue(samples, "holds_total", { outcome });
    expect({
      created: holds("created"),
      conflict: holds("conflict"),
      paid: holds("paid"),
      cancelled: holds("cancelled"),
      expired: holds("expired"),
    }).toEqual({ created: 4, conflict: 1, paid: 1, cancelled: 1, expired: 1 });
    expect(sampleValue(samples, "idempotent_replays_total", { route: "/reservations" })).toBe(1);
    expect(sampleValue(samples, "expiry_sweeper_runs_total")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "expiry_sweeper_holds_expired_total")).toBe(1);

    const requests = (labels: Record<string, string>) =>
      sampleValue(samples, "http_request_duration_seconds_count", labels);
    expect(requests({ method: "POST", route: "/reservations", status: "201" })).toBe(5);
    expect(requests({ method: "POST", route: "/reservations", status: "409" })).toBe(1);
    expect(requests({ method: "POST", route: "/reservations/:id/pay", status: "200" })).toBe(2);
    expect(requests({ method: "POST", route: "/reservations/:id/cancel", status: "200" })).toBe(1);
    expect(requests({ method: "GET", route: "/reservations/:id", status: "404" })).toBe(1);
    expect(requests({ method: "GET", route: "unmatched", status: "404" })).toBe(1);
    const routes = samples.filter((sample) => sample.labels.route !== undefined);
    expect(routes.filter((sample) => UUID.test(sample.labels.route as string))).toEqual([]);
    expect(
      sampleValue(samples, "http_request_duration_seconds_bucket", { route: "/reservations", le: "+Inf" }),
    ).toBe(6);

    // Nothing relays in this test, so the gauges equal what the outbox table holds.
    const [backlog] = await queryRows<{ pending: number }>(
      database.db,
      sql`SELECT count(*)::int AS pending FROM outbox WHERE published_at IS NULL`,
    );
    expect(backlog?.pending).toBeGreaterThan(0);
    expect(sampleValue(samples, "outbox_pending_events")).toBe(backlog?.pending);
    expect(sampleValue(samples, "outbox_lag_seconds")).toBeGreaterThan(1);
  });

  it("follows the outbox: published rows leave the backlog, and an empty one has no lag", async () => {
    await database.db.execute(sql`UPDATE outbox SET published_at = now() WHERE published_at IS NULL`);
    const samples = await scrape(app);
    expect(sampleValue(samples, "outbox_pending_events")).toBe(0);
    expect(sampleValue(samples, "outbox_lag_seconds")).toBe(0);
  });

  it("exports the default process metrics and the lock metrics from the Telemetry port", async () => {
    metrics.telemetry.lockAcquisition("redis", "acquired");
    metrics.telemetry.lockAcquisition("redis", "conflict");
    metrics.telemetry.lockFallback(true, "redis unreachable");
    let samples = await scrape(app);
    expect(sampleValue(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sampleValue(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(
      sampleValue(samples, "seat_lock_acquisitions_total", { backend: "redis", result: "acquired" }),
    ).toBe(1);
    expect(sampleValue(samples, "seat_lock_fallback_active")).toBe(1);
    metrics.telemetry.lockFallback(false);
    samples = await scrape(app);
    expect(sampleValue(samples, "seat_lock_fallback_active")).toBe(0);
  });
});

describe("/metrics without a metrics exporter (Workers, Deno, Bun)", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase("pglite");
  });
  afterAll(() => database.close());

  it("answers 501 problem+json saying metrics are not collected here", async () => {
    const response = await call(createTestApp(database.db), "GET", "/metrics");
    expect(response.status).toBe(501);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.body).toMatchObject({ code: "METRICS_NOT_COLLECTED", status: 501 });
    expect(response.body.detail).toMatch(/not collected on this runtime/);
    expect(response.body.requestId).toEqual(expect.any(String));
  });

  it("keeps two apps' counters apart: each exporter has its own registry", async () => {
    const first = createPromMetrics();
    const second = createPromMetrics();
    first.telemetry.holdOutcome("created", 3);
    const count = async (metrics: PromMetrics) =>
      sampleValue(parseSamples((await metrics.render()).body), "holds_total", { outcome: "created" });
    expect(await count(first)).toBe(3);
    expect(await count(second)).toBe(0);
  });
});

describe("/metrics when the outbox cannot be read", () => {
  it("still answers, with NaN outbox gauges rather than a failed scrape", async () => {
    const database = await openTestDatabase("pglite");
    const metrics = createPromMetrics({ db: database.db });
    const app = createTestApp(database.db, { metrics });
    await database.close();
    const samples = await scrape(app);
    expect(sampleValue(samples, "outbox_pending_events")).toBeNaN();
    expect(sampleValue(samples, "outbox_lag_seconds")).toBeNaN();
    expect(sampleValue(samples, "holds_total", { outcome: "created" })).toBe(0);
  });
});
