import { type Probe, probeAmqp, probePostgres, probeRedis, reasonOf } from "./service-probes.ts";

/**
 * How a test run finds each real service, in order: its TEST_*_URL when set; else the service on
 * its default local port when it answers; else a container (testcontainers) when a Docker engine
 * answers; else none, and the suites that need it are skipped (a failure under CI=true).
 */
export type Service = "TEST_DATABASE_URL" | "TEST_REDIS_URL" | "TEST_AMQP_URL";

export type StartedContainer = { url: string; stop: () => Promise<void> };

export type ServiceSpec = {
  variable: Service;
  /** What a reader calls it: "PostgreSQL". */
  title: string;
  /** Where it answers on a developer machine with the usual defaults. */
  localUrl: string;
  probe: Probe;
  startContainer: () => Promise<StartedContainer>;
};

export type Selection =
  | { variable: Service; source: "env" | "local"; url: string }
  | { variable: Service; source: "container"; url: string; stop: () => Promise<void> }
  /** `reason`: why this service is missing; `docker`: why no container could stand in (when that was why). */
  | { variable: Service; source: "none"; reason: string; docker?: string };

export type SelectionContext = {
  env: Record<string, string | undefined>;
  /** Resolves when a Docker engine answers (asked at most once per run); rejects with why not. */
  docker: () => Promise<void>;
  probeTimeoutMs?: number;
};

// Images as in docker-compose.yml.
export const SERVICES: Record<Service, ServiceSpec> = {
  TEST_DATABASE_URL: {
    variable: "TEST_DATABASE_URL",
    title: "PostgreSQL",
    localUrl: "postgres://postgres@127.0.0.1:5432/postgres",
    probe: probePostgres,
    startContainer: async () => {
      const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
      const container = await new PostgreSqlContainer("postgres:16-alpine").start();
      return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
    },
  },
  TEST_REDIS_URL: {
    variable: "TEST_REDIS_URL",
    title: "Redis",
    localUrl: "redis://127.0.0.1:6379",
    probe: probeRedis,
    startContainer: async () => {
      const { RedisContainer } = await import("@testcontainers/redis");
      const container = await new RedisContainer("redis:7-alpine").start();
      return { url: container.getConnectionUrl(), stop: async () => void (await container.stop()) };
    },
  },
  TEST_AMQP_URL: {
    variable: "TEST_AMQP_URL",
    title: "RabbitMQ",
    localUrl: "amqp://guest:guest@127.0.0.1:5672",
    probe: probeAmqp,
    startContainer: async () => {
      const { RabbitMQContainer } = await import("@testcontainers/rabbitmq");
      const container = await new RabbitMQContainer("rabbitmq:3.13-management-alpine").start();
      return { url: container.getAmqpUrl(), stop: async () => void (await container.stop()) };
    },
  },
};

export async function selectService(spec: ServiceSpec, context: SelectionContext): Promise<Selection> {
  const { variable } = spec;
  const fromEnv = context.env[variable];
  if (fromEnv) return { variable, source: "env", url: fromEnv };

  const local = new URL(spec.localUrl);
  const localWhere = `${local.hostname}:${local.port}`;
  let localReason: string;
  try {
    await spec.probe(spec.localUrl, context.probeTimeoutMs ?? 2_000);
    return { variable, source: "local", url: spec.localUrl };
  } catch (error) {
    localReason = `nothing usable on ${localWhere} (${reasonOf(error)})`;
  }

  try {
    await context.docker();
  } catch (error) {
    return { variable, source: "none", reason: localReason, docker: reasonOf(error) };
  }
  try {
    const container = await spec.startContainer();
    return { variable, source: "container", url: container.url, stop: container.stop };
  } catch (error) {
    return {
      variable,
      source: "none",
      reason: `${localReason}, and its container did not start (${reasonOf(error)})`,
    };
  }
}

/** Every service, the Docker engine probed once and only if some service needs it. */
export async function selectServices(
  specs: ServiceSpec[],
  context: Omit<SelectionContext, "docker"> & { probeDocker: () => Promise<void> },
): Promise<Selection[]> {
  let docker: Promise<void> | undefined;
  const once = () => {
    docker ??= context.probeDocker();
    return docker;
  };
  return Promise.all(specs.map((spec) => selectService(spec, { ...context, docker: once })));
}

/** The one line a run prints when suites were skipped: what, why, and how to run them. */
export function skipSummary(skipped: { variable: Service; file: string }[], selections: Selection[]): string {
  const files = [...new Set(skipped.map((skip) => skip.file))].sort();
  const missing = selections.filter(
    (selection): selection is Extract<Selection, { source: "none" }> =>
      selection.source === "none" && skipped.some((skip) => skip.variable === selection.variable),
  );
  const titles = missing.map((selection) => SERVICES[selection.variable].title);
  const why = missing.map((selection) => `${SERVICES[selection.variable].title}: ${selection.reason}`);
  const docker = [...new Set(missing.flatMap((selection) => selection.docker ?? []))];
  if (docker.length > 0) why.push(`no Docker engine (${docker.join("; ")})`);
  const enable = missing.map((selection) => `${selection.variable}=${SERVICES[selection.variable].localUrl}`);
  return (
    `skipped ${files.length} test file${files.length === 1 ? "" : "s"} needing ${titles.join(", ")} ` +
    `(${files.join(", ")}): ${why.join("; ")}. To run them, start ${missing.length === 1 ? "it" : "them"} ` +
    `on the default port, start a Docker engine, or set ${enable.join(" ")}.`
  );
}

/** What the workers learn of a selection (no functions cross the process boundary). */
export type ServiceChoice = {
  variable: Service;
  source: Selection["source"];
  url?: string;
  reason?: string;
  docker?: string;
};

export const choiceOf = (selection: Selection): ServiceChoice =>
  selection.source === "none"
    ? { variable: selection.variable, source: "none", reason: selection.reason, docker: selection.docker }
    : { variable: selection.variable, source: selection.source, url: selection.url };

/**
 * A suite's answer for one service: its URL, or undefined after `recordSkip` (the suite skips);
 * under CI=true a missing service throws, so the skip fails the run.
 */
export function urlOrSkip(
  choice: ServiceChoice,
  env: Record<string, string | undefined>,
  recordSkip: () => void,
): string | undefined {
  if (choice.url) return choice.url;
  const message = `${SERVICES[choice.variable].title} for ${choice.variable}: ${choice.reason}${choice.docker ? `, no Docker engine (${choice.docker})` : ""}`;
  if (env.CI === "true") throw new Error(`${message}. Under CI=true a skipped service suite is a failure.`);
  recordSkip();
  return undefined;
}
