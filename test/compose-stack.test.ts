import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createPromMetrics } from "../src/entry/prom-metrics.ts";
import { createTestApp } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import { exportedSeriesNames } from "./support/prometheus.ts";

/**
 * No Docker engine runs here, so the stack is checked as files: docker-compose's own validation,
 * and every Prometheus and Grafana reference followed to what the app really exports.
 */

// biome-ignore lint/suspicious/noExplicitAny: YAML documents are read by shape
type Yaml = any;
// `merge`: the compose file shares the API service definition through `<<: *api`.
const readYaml = (path: string): Yaml => parse(readFileSync(path, "utf8"), { merge: true });
const compose = readYaml("docker-compose.yml");
const services: Record<string, Yaml> = compose.services;

type Panel = { title: string; type: string; targets?: { expr: string }[]; datasource?: { uid: string } };
const dashboard = JSON.parse(readFileSync("docker/grafana/dashboards/seat-reservation.json", "utf8")) as {
  uid: string;
  panels: Panel[];
};
const queries = dashboard.panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({ panel, expr: target.expr })),
);

const PROMQL_WORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
]);

/** The series a PromQL expression reads: identifiers that are not functions, keywords, labels or ranges. */
function seriesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, "");
  const names = [...stripped.matchAll(/(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)].map(
    (match) => match[1] as string,
  );
  return names.filter((name) => !PROMQL_WORDS.has(name) && !/^(e|inf|nan)$/i.test(name));
}

describe("docker-compose.yml", () => {
  const binary = spawnSync("docker-compose", ["version"]).status === 0;
  if (!binary && process.env.CI === "true") {
    throw new Error("docker-compose is not installed; CI needs it (apt-get install -y docker-compose).");
  }
  if (!binary)
    console.warn(
      "skipped: docker-compose is not installed (apt-get install -y docker-compose) to validate the stack.",
    );

  it.skipIf(!binary)("passes docker-compose config", () => {
    const result = spawnSync("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], {
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("runs two API instances behind a load balancer, the sidecar and every backing service", () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        "api-1",
        "api-2",
        "grafana",
        "lb",
        "postgres",
        "prometheus",
        "rabbitmq",
        "redis",
        "redis-rest",
        "sidecar",
      ].sort(),
    );
    const nginx = readFileSync("docker/nginx/nginx.conf", "utf8");
    expect(nginx).toMatch(/server api-1:3000/);
    expect(nginx).toMatch(/server api-2:3000/);
    expect(services.rabbitmq.image).toMatch(/management/);
    expect(services["redis-rest"].image).toMatch(/^hiett\/serverless-redis-http/);
    expect(services["redis-rest"].environment.SRH_CONNECTION_STRING).toBe("redis://redis:6379");
    expect(services["redis-rest"].environment.SRH_TOKEN).toBe(
      services["api-1"].environment.UPSTASH_REDIS_REST_TOKEN,
    );
    for (const api of ["api-1", "api-2"]) {
      expect(services[api].environment).toMatchObject({
        DATABASE_URL: expect.stringMatching(/@postgres:5432\//),
        UPSTASH_REDIS_REST_URL: "http://redis-rest:80",
        AMQP_URL: expect.stringMatching(/@rabbitmq:5672$/),
      });
    }
    expect(services.sidecar.command.join(" ")).toContain("dist/sidecar.js");
  });

  it("gives every long-running service a healthcheck, and waits for healthy dependencies only", () => {
    // The sidecar serves no HTTP and nothing depends on it.
    const withoutHealthcheck = Object.keys(services).filter((name) => !services[name].healthcheck);
    expect(withoutHealthcheck).toEqual(["sidecar"]);
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries(service.depends_on ?? {})) {
        expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
        expect(condition, `${name} -> ${dependency}`).toEqual({ condition: "service_healthy" });
      }
    }
  });

  it("mounts only files that exist", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(":")[0] as string;
        if (source.startsWith("./")) expect(existsSync(source), `${name} mounts ${source}`).toBe(true);
      }
    }
    expect(existsSync("Dockerfile")).toBe(true);
  });
});

describe("Prometheus and Grafana configuration", () => {
  it("Prometheus scrapes each API instance's /metrics directly, not through the load balancer", () => {
    const prometheus = readYaml("docker/prometheus/prometheus.yml");
    const jobs = prometheus.scrape_configs as Yaml[];
    expect(jobs).toHaveLength(1);
    const [job] = jobs;
    expect(job.metrics_path).toBe("/metrics");
    expect(job.static_configs.flatMap((config: Yaml) => config.targets)).toEqual([
      "api-1:3000",
      "api-2:3000",
    ]);
    expect(parseInt(prometheus.global.scrape_timeout, 10)).toBeLessThan(
      parseInt(prometheus.global.scrape_interval, 10),
    );
  });

  it("provisions the Prometheus datasource the dashboard uses, and the dashboard from where it is mounted", () => {
    const datasources = readYaml("docker/grafana/provisioning/datasources/prometheus.yml")
      .datasources as Yaml[];
    expect(datasources).toEqual([
      expect.objectContaining({ type: "prometheus", url: "http://prometheus:9090" }),
    ]);
    const uid = datasources[0].uid;
    for (const panel of dashboard.panels.filter((panel) => panel.type !== "row")) {
      expect(panel.datasource?.uid, panel.title).toBe(uid);
    }
    const [provider] = readYaml("docker/grafana/provisioning/dashboards/seat-reservation.yml")
      .providers as Yaml[];
    const mounted = (services.grafana.volumes as string[]).find((volume) =>
      volume.endsWith(`:${provider.options.path}:ro`),
    );
    expect(mounted?.split(":")[0]).toBe("./docker/grafana/dashboards");
  });
});

describe("the Grafana dashboard against a real app's /metrics", () => {
  let database: TestDatabase;
  let exported: Set<string>;

  beforeAll(async () => {
    database = await openTestDatabase("pglite");
    const metrics = createPromMetrics({ db: database.db });
    const app = createTestApp(database.db, { metrics, telemetry: metrics.telemetry });
    await app.request("/health");
    exported = exportedSeriesNames(await (await app.request("/metrics")).text());
  });
  afterAll(() => database.close());

  it("reads only series the app exports", () => {
    expect(queries.length).toBeGreaterThan(10);
    const unknown = queries.flatMap(({ panel, expr }) =>
      seriesIn(expr)
        .filter((name) => !exported.has(name))
        .map((name) => `${panel.title}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it("shows request rate, latency percentiles, holds, conflicts, sales, expiries, outbox lag and fallback state", () => {
    const all = queries.map((query) => query.expr).join("\n");
    expect(all).toMatch(/rate\(http_request_duration_seconds_count/);
    for (const quantile of ["0.5", "0.95", "0.99"]) {
      expect(all).toContain(
        `histogram_quantile(${quantile}, sum by (le) (rate(http_request_duration_seconds_bucket`,
      );
    }
    expect(all).toMatch(/sum by \(outcome\) \(rate\(holds_total/);
    for (const outcome of ["conflict", "paid", "expired"])
      expect(all).toContain(`holds_total{outcome="${outcome}"}`);
    expect(all).toContain("outbox_lag_seconds");
    expect(all).toContain("outbox_pending_events");
    expect(all).toContain("seat_lock_fallback_active");
  });

  it("the expression reader finds series and ignores functions, labels and ranges", () => {
    expect(
      seriesIn(
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{route=~"/a.*"}[$__rate_interval])))',
      ),
    ).toEqual(["http_request_duration_seconds_bucket"]);
    expect(seriesIn('sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total{x="y"}[5m])), 1e-9) * 60')).toEqual([
      "a_total",
      "b_total",
    ]);
  });
});
