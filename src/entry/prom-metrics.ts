import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { HoldOutcome, Telemetry } from "../booking/telemetry.ts";
import type { Database } from "../db/database.ts";
import { withDeadline } from "../deadline.ts";
import { readOutboxBacklog } from "../events/outbox-queries.ts";
import type { MetricsExporter, RequestObservation } from "../ports.ts";

/**
 * The Node metrics adapter: prom-client on a registry of its own (never the global one, so two
 * apps in one process, as in tests, never share counters). The app sees only `MetricsExporter`;
 * the booking services only the `Telemetry` port.
 */
export type PromMetrics = MetricsExporter & { registry: Registry; telemetry: Telemetry };

const HOLD_OUTCOMES: HoldOutcome[] = ["created", "conflict", "expired", "paid", "cancelled"];
const OUTBOX_QUERY_TIMEOUT_MS = 2_000;

export function createPromMetrics(options: { db?: Database } = {}): PromMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const requestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route template and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const requestSeries = new Map<string, ReturnType<typeof requestDuration.labels>>();
  const holds = new Counter({
    name: "holds_total",
    help: "Seat holds by outcome: created, conflict (409), expired, paid, cancelled",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of HOLD_OUTCOMES) holds.inc({ outcome }, 0);
  const lockAcquisitions = new Counter({
    name: "seat_lock_acquisitions_total",
    help: "Seat lock attempts by backend (redis, upstash, advisory; memory: seats the instance had just seen refused) and result (acquired, conflict, error)",
    labelNames: ["backend", "result"] as const,
    registers,
  });
  const fallbackActive = new Gauge({
    name: "seat_lock_fallback_active",
    help: "1 while PostgreSQL advisory locks stand in for an unreachable Redis, else 0",
    registers,
  });
  fallbackActive.set(0);
  const sweeperRuns = new Counter({
    name: "expiry_sweeper_runs_total",
    help: "Completed runs of the local expiry sweeper",
    registers,
  });
  const sweeperExpired = new Counter({
    name: "expiry_sweeper_holds_expired_total",
    help: "Overdue holds the local sweeper marked EXPIRED",
    registers,
  });
  const replays = new Counter({
    name: "idempotent_replays_total",
    help: "Responses replayed for a repeated Idempotency-Key, by route template",
    labelNames: ["route"] as const,
    registers,
  });

  const outbox = { pending: Number.NaN, lagSeconds: Number.NaN };
  let outboxRead: Promise<void> | undefined;
  // Both gauges come from one query per scrape: whichever collects first starts it, the other joins.
  const readOutbox = () => {
    if (!options.db) return Promise.resolve();
    // Bounded so a hung database cannot hold up a scrape.
    outboxRead ??= withDeadline(
      readOutboxBacklog(options.db),
      OUTBOX_QUERY_TIMEOUT_MS,
      "outbox query: no answer",
    )
      .then(
        (backlog) => {
          Object.assign(outbox, backlog);
        },
        () => {
          Object.assign(outbox, { pending: Number.NaN, lagSeconds: Number.NaN });
        },
      )
      .finally(() => {
        outboxRead = undefined;
      });
    return outboxRead;
  };
  new Gauge({
    name: "outbox_pending_events",
    help: "Events written to the outbox and not yet published (NaN when the database did not answer)",
    registers,
    async collect() {
      await readOutbox();
      this.set(outbox.pending);
    },
  });
  new Gauge({
    name: "outbox_lag_seconds",
    help: "Age of the oldest unpublished outbox event; 0 when none is pending",
    registers,
    async collect() {
      await readOutbox();
      this.set(outbox.lagSeconds);
    },
  });

  const telemetry: Telemetry = {
    holdOutcome: (outcome, count = 1) => holds.inc({ outcome }, count),
    lockAcquisition: (backend, result) => lockAcquisitions.inc({ backend, result }),
    lockFallback: (active) => fallbackActive.set(active ? 1 : 0),
    sweeperRun: (expired) => {
      sweeperRuns.inc();
      sweeperExpired.inc(expired);
    },
    idempotentReplay: (route) => replays.inc({ route }),
  };

  return {
    registry,
    telemetry,
    observeRequest: ({ method, route, status, seconds }: RequestObservation) => {
      // prom-client hashes a label object on every call; methods, route templates and statuses
      // are few, so each series is looked up once.
      const key = `${method} ${status} ${route}`;
      let series = requestSeries.get(key);
      if (!series) {
        series = requestDuration.labels({ method, route, status: String(status) });
        requestSeries.set(key, series);
      }
      series.observe(seconds);
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
