import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/server-process.ts";
import { findDocker, probeAmqp, probeDocker, probePostgres, probeRedis } from "./support/service-probes.ts";
import {
  choiceOf,
  SERVICES,
  type ServiceSpec,
  selectService,
  selectServices,
  skipSummary,
  urlOrSkip,
} from "./support/service-selection.ts";
import { serviceUrl } from "./support/services.ts";

/**
 * The test run's service selection, branch by branch, against real sockets: closed ports, listeners
 * that accept and say nothing, a fake Docker engine API on a unix socket. Only starting a container
 * is stood in for (no Docker engine runs here); the rest is the code the run uses.
 */
const listeners: Server[] = [];
const connections = new Set<Socket>();
const scratch = mkdtempSync(join(tmpdir(), "service-selection-"));

async function listen(server: Server, where: number | string = 0): Promise<Server> {
  listeners.push(server);
  server.on("connection", (socket: Socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
  });
  await new Promise<void>((resolve) =>
    typeof where === "string" ? server.listen(where, resolve) : server.listen(where, "127.0.0.1", resolve),
  );
  return server;
}
const portOf = (server: Server) => (server.address() as { port: number }).port;

/** Accepts connections and never says a word: a hung or foreign service. */
const silentServer = () => listen(createServer(() => {}));
/** Answers every RESP command line with `reply`. */
const respServer = (reply: string) =>
  listen(createServer((socket) => socket.on("data", () => socket.write(reply))));
/** A Docker engine API that answers GET /_ping with `status` and `body`. */
const dockerApi = (socketPath: string, status = 200, body = "OK") =>
  listen(
    createHttpServer((request, response) => {
      response.writeHead(request.url === "/_ping" ? status : 404).end(request.url === "/_ping" ? body : "");
    }),
    socketPath,
  );

afterAll(async () => {
  for (const socket of connections) socket.destroy();
  await Promise.all(listeners.map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(scratch, { recursive: true, force: true });
});

describe("probes", () => {
  it("refuse a closed port for every service", async () => {
    const port = await freePort();
    await expect(probePostgres(`postgres://postgres@127.0.0.1:${port}/postgres`, 1_000)).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await expect(probeRedis(`redis://127.0.0.1:${port}`, 1_000)).rejects.toThrow(/ECONNREFUSED/);
    await expect(probeAmqp(`amqp://guest:guest@127.0.0.1:${port}`, 1_000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("give up on a port that accepts and never answers, within their bound", async () => {
    const port = portOf(await silentServer());
    await expect(probePostgres(`postgres://postgres@127.0.0.1:${port}/postgres`, 300)).rejects.toThrow();
    await expect(probeRedis(`redis://127.0.0.1:${port}`, 300)).rejects.toThrow(/no answer within 300 ms/);
    await expect(probeAmqp(`amqp://guest:guest@127.0.0.1:${port}`, 300)).rejects.toThrow(
      /no answer within 300 ms/,
    );
  });

  it("take only a real answer from Redis: PONG, not an error or another protocol", async () => {
    const pong = portOf(await respServer("+PONG\r\n"));
    await expect(probeRedis(`redis://127.0.0.1:${pong}`, 1_000)).resolves.toBeUndefined();
    const locked = portOf(await respServer("-NOAUTH Authentication required.\r\n"));
    await expect(probeRedis(`redis://127.0.0.1:${locked}`, 1_000)).rejects.toThrow(/NOAUTH/);
    const http = portOf(await respServer("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await expect(probeRedis(`redis://127.0.0.1:${http}`, 300)).rejects.toThrow();
  });

  it("take a real PostgreSQL, Redis and RabbitMQ when the run has them", async (context) => {
    const database = serviceUrl("TEST_DATABASE_URL");
    const redis = serviceUrl("TEST_REDIS_URL");
    const amqp = serviceUrl("TEST_AMQP_URL");
    if (!database || !redis || !amqp) return context.skip();
    await expect(probePostgres(database, 2_000)).resolves.toBeUndefined();
    await expect(probeRedis(redis, 2_000)).resolves.toBeUndefined();
    await expect(probeAmqp(amqp, 2_000)).resolves.toBeUndefined();
  });

  it("find a Docker engine by its API's /_ping, at DOCKER_HOST or the default sockets", async () => {
    const engine = join(scratch, "docker.sock");
    await dockerApi(engine);
    await expect(probeDocker(`unix://${engine}`, 1_000)).resolves.toBeUndefined();
    await expect(findDocker({ DOCKER_HOST: `unix://${engine}` })).resolves.toBeUndefined();

    const other = join(scratch, "not-docker.sock");
    await dockerApi(other, 404, "page not found");
    await expect(probeDocker(`unix://${other}`, 1_000)).rejects.toThrow(/answered 404/);
    await expect(findDocker({ DOCKER_HOST: `unix://${join(scratch, "missing.sock")}` })).rejects.toThrow(
      /missing\.sock ENOENT/,
    );
    const closed = await freePort();
    await expect(findDocker({ DOCKER_HOST: `tcp://127.0.0.1:${closed}` })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("selecting a service", () => {
  let closedPort: number;
  let engine: string;
  beforeAll(async () => {
    closedPort = await freePort();
    engine = join(scratch, "engine.sock");
    await dockerApi(engine);
  });

  /** Redis's real spec, pointed at `localUrl`, with container starts recorded instead of run. */
  function redisSpec(localUrl: string) {
    const started: string[] = [];
    const spec: ServiceSpec = {
      ...SERVICES.TEST_REDIS_URL,
      localUrl,
      startContainer: async () => {
        started.push("redis");
        return { url: "redis://container.invalid:6379", stop: async () => {} };
      },
    };
    return { spec, started };
  }
  const noDocker = () => findDocker({ DOCKER_HOST: `unix://${join(scratch, "no-engine.sock")}` });
  const docker = () => findDocker({ DOCKER_HOST: `unix://${engine}` });

  it("takes TEST_*_URL when set, without probing anything", async () => {
    const { spec, started } = redisSpec(`redis://127.0.0.1:${closedPort}`);
    const selection = await selectService(spec, {
      env: { TEST_REDIS_URL: "redis://elsewhere:6379" },
      docker: () => Promise.reject(new Error("not asked")),
    });
    expect(selection).toEqual({ variable: "TEST_REDIS_URL", source: "env", url: "redis://elsewhere:6379" });
    expect(started).toEqual([]);
  });

  it("takes the default local port when the service answers there", async () => {
    const pong = portOf(await respServer("+PONG\r\n"));
    const { spec, started } = redisSpec(`redis://127.0.0.1:${pong}`);
    const selection = await selectService(spec, { env: {}, docker });
    expect(selection).toEqual({
      variable: "TEST_REDIS_URL",
      source: "local",
      url: `redis://127.0.0.1:${pong}`,
    });
    expect(started).toEqual([]);
  });

  it("starts a container when the local port is closed and a Docker engine answers", async () => {
    const { spec, started } = redisSpec(`redis://127.0.0.1:${closedPort}`);
    const selection = await selectService(spec, { env: {}, docker });
    expect(selection).toMatchObject({ source: "container", url: "redis://container.invalid:6379" });
    expect(started).toEqual(["redis"]);
  });

  it("also passes over a local port that answers but is not the service", async () => {
    const silent = portOf(await silentServer());
    const { spec, started } = redisSpec(`redis://127.0.0.1:${silent}`);
    const selection = await selectService(spec, { env: {}, docker, probeTimeoutMs: 300 });
    expect(selection.source).toBe("container");
    expect(started).toEqual(["redis"]);
  });

  it("selects none, saying why, when the port is closed and no Docker engine answers", async () => {
    const { spec, started } = redisSpec(`redis://127.0.0.1:${closedPort}`);
    const selection = await selectService(spec, { env: {}, docker: noDocker });
    expect(selection).toEqual({
      variable: "TEST_REDIS_URL",
      source: "none",
      reason: `nothing usable on 127.0.0.1:${closedPort} (ECONNREFUSED)`,
      docker: expect.stringMatching(/no-engine\.sock ENOENT/),
    });
    expect(started).toEqual([]);
  });

  it("selects none when Docker answers but the container does not start", async () => {
    const spec: ServiceSpec = {
      ...SERVICES.TEST_REDIS_URL,
      localUrl: `redis://127.0.0.1:${closedPort}`,
      startContainer: () => Promise.reject(new Error("pull access denied for redis")),
    };
    const selection = await selectService(spec, { env: {}, docker });
    expect(selection).toMatchObject({
      source: "none",
      reason: expect.stringMatching(/container did not start/),
    });
  });

  it("asks the Docker engine once for all the services that need it", async () => {
    let asked = 0;
    const specs = (["a", "b", "c"] as const).map(() => redisSpec(`redis://127.0.0.1:${closedPort}`).spec);
    const selections = await selectServices(specs, {
      env: {},
      probeDocker: () => {
        asked++;
        return noDocker();
      },
    });
    expect(selections.map((selection) => selection.source)).toEqual(["none", "none", "none"]);
    expect(asked).toBe(1);
  });
});

describe("a suite's answer", () => {
  const none = choiceOf({
    variable: "TEST_AMQP_URL",
    source: "none",
    reason: "nothing usable on 127.0.0.1:5672",
  });

  it("is the URL when there is one", () => {
    const recorded: string[] = [];
    const url = urlOrSkip({ variable: "TEST_AMQP_URL", source: "local", url: "amqp://x" }, {}, () =>
      recorded.push("skip"),
    );
    expect(url).toBe("amqp://x");
    expect(recorded).toEqual([]);
  });

  it("is a recorded skip without CI", () => {
    const recorded: string[] = [];
    expect(urlOrSkip(none, {}, () => recorded.push("skip"))).toBeUndefined();
    expect(recorded).toEqual(["skip"]);
  });

  it("is a failure under CI=true", () => {
    const recorded: string[] = [];
    expect(() => urlOrSkip(none, { CI: "true" }, () => recorded.push("skip"))).toThrow(
      /RabbitMQ for TEST_AMQP_URL: nothing usable on 127\.0\.0\.1:5672.*Under CI=true/,
    );
    expect(recorded).toEqual([]);
  });

  it("is summed up in one line naming the files, the services, why, and how to enable them", () => {
    const line = skipSummary(
      [
        { variable: "TEST_AMQP_URL", file: "test/b.test.ts" },
        { variable: "TEST_AMQP_URL", file: "test/a.test.ts" },
        { variable: "TEST_AMQP_URL", file: "test/b.test.ts" },
      ],
      [
        {
          variable: "TEST_DATABASE_URL",
          source: "local",
          url: "postgres://postgres@127.0.0.1:5432/postgres",
        },
        {
          variable: "TEST_AMQP_URL",
          source: "none",
          reason: "nothing usable on 127.0.0.1:5672",
          docker: "tried x",
        },
      ],
    );
    expect(line).not.toContain("\n");
    expect(line).toBe(
      "skipped 2 test files needing RabbitMQ (test/a.test.ts, test/b.test.ts): RabbitMQ: nothing usable on " +
        "127.0.0.1:5672; no Docker engine (tried x). To run them, start it on the default port, start a " +
        "Docker engine, or set TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672.",
    );
  });
});

// Where no service answers (a network namespace of its own, no Docker socket), a whole vitest run
// skips its service suites with one line and exits 0; under CI=true it fails.
const canIsolateNetwork =
  process.platform === "linux" && spawnSync("unshare", ["-n", "true"], { stdio: "ignore" }).status === 0;

describe.skipIf(!canIsolateNetwork)("a vitest run where nothing answers", () => {
  function runIsolated(env: Record<string, string>) {
    const child = spawn(
      "unshare",
      [
        "-n",
        "sh",
        "-c",
        "ip link set lo up; exec npx vitest run --config test/fixtures/service-skips/vitest.config.ts",
      ],
      {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          DOCKER_HOST: `unix://${join(scratch, "no-engine.sock")}`,
          NO_COLOR: "1",
          ...env,
        },
      },
    );
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    return new Promise<{ code: number | null; output: string }>((resolve) =>
      child.on("close", (code) => resolve({ code, output })),
    );
  }

  it("skips the service suites, prints one summary line, and exits 0", { timeout: 60_000 }, async () => {
    const { code, output } = await runIsolated({});
    expect(code, output).toBe(0);
    const summary = output.split("\n").filter((line) => line.startsWith("skipped"));
    expect(summary, output).toHaveLength(1);
    expect(summary[0]).toMatch(
      /^skipped 2 test files needing PostgreSQL, Redis, RabbitMQ \(test\/fixtures\/service-skips\/broker\.spec\.ts, test\/fixtures\/service-skips\/database-and-locks\.spec\.ts\): PostgreSQL: nothing usable on 127\.0\.0\.1:5432 \(ECONNREFUSED\);/,
    );
    expect(output).toMatch(/Tests\s+1 passed \| 3 skipped/);
  });

  it("fails under CI=true, naming what is missing", { timeout: 60_000 }, async () => {
    const { code, output } = await runIsolated({ CI: "true" });
    expect(code, output).toBe(1);
    expect(output).toContain(
      "PostgreSQL for TEST_DATABASE_URL: nothing usable on 127.0.0.1:5432 (ECONNREFUSED)",
    );
    expect(output).toContain("Under CI=true a skipped service suite is a failure.");
  });
});
