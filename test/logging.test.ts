import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import type { Database } from "../src/db/database.ts";
import { createConsoleLogger } from "../src/entry/console-logger.ts";
import { createNodeLogger, runInRequestScope } from "../src/entry/node-logger.ts";
import { call, createSessionVia, createTestApp, type TestApp } from "./support/app.ts";
import {
  createScratchDatabase,
  dropScratchDatabase,
  openTestDatabase,
  type TestDatabase,
} from "./support/database.ts";
import { parseSamples, sampleValue } from "./support/prometheus.ts";
import { startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

type Line = Record<string, unknown> & { level: string; msg?: string; requestId?: string };

function capture(level = "info") {
  const raw: string[] = [];
  const logger = createNodeLogger(level, { write: (line: string) => void raw.push(line) });
  return { logger, raw, lines: () => raw.map((line) => JSON.parse(line) as Line) };
}

describe("the Node logger", () => {
  it("writes JSON lines at LOG_LEVEL and above", () => {
    const { logger, lines } = capture("warn");
    logger.info({ a: 1 }, "hidden");
    logger.warn({ b: 2 }, "shown");
    expect(lines()).toEqual([
      expect.objectContaining({ level: "warn", b: 2, msg: "shown", time: expect.any(String) }),
    ]);
  });

  it("never writes secrets bound to a child logger", () => {
    const { logger, raw } = capture();
    const child = logger.child({ token: "tok-10", url: "redis://:redis-pass-11@redis:6379" });
    child.info({}, "child");
    child.child({ authorization: "Bearer tok-15" }).info({}, "grandchild");
    expect(raw.join("")).not.toMatch(/tok-10|redis-pass-11|tok-15/);
    expect(raw.join("")).toContain("redis://:[redacted]@redis:6379");
  });

  it("keeps a line's fields off the later lines of the same request scope", async () => {
    const { logger, lines } = capture();
    await runInRequestScope({ requestId: "req-1" }, async () => {
      logger.warn({ backend: "redis", err: { message: "timeout" } }, "first");
      logger.info({}, "second");
    });
    expect(lines().map(({ msg, requestId, backend, err }) => ({ msg, requestId, backend, err }))).toEqual([
      { msg: "first", requestId: "req-1", backend: "redis", err: { message: "timeout" } },
      { msg: "second", requestId: "req-1", backend: undefined, err: undefined },
    ]);
  });

  it("masks credentials in a line's fields, and writes clean fields as they are", () => {
    const { logger, lines } = capture();
    logger.info({ route: "/reservations", status: 409, url: "postgres://u:pw-12@db/x", token: "t-13" }, "r");
    expect(lines()[0]).toMatchObject({
      route: "/reservations",
      status: 409,
      url: "postgres://u:[redacted]@db/x",
      token: "[redacted]",
    });
  });
});

/** The console logger of Workers, Deno and Bun, its lines captured from the console it writes to. */
function captureConsole() {
  const raw: string[] = [];
  const spies = (["log", "warn", "error"] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation((line: unknown) => void raw.push(String(line))),
  );
  onTestFinished(() => {
    for (const spy of spies) spy.mockRestore();
  });
  return { logger: createConsoleLogger("info"), raw };
}

describe.each([
  ["the Node logger (pino)", () => capture()],
  ["the edge runtimes' console logger", captureConsole],
])("one secret scrubber: %s", (_name, open) => {
  it("never writes secrets: URL passwords, authorization headers, bearer tokens, ?token=, signing keys", () => {
    const { logger, raw } = open();
    logger.info(
      {
        databaseUrl: "postgres://app:db-pass-1@db:5432/cinema",
        headers: { authorization: "Bearer tok-2", cookie: "session=ck-3" },
        upstash: { url: "https://r.example", token: "tok-4" },
        qstash: { currentSigningKey: "sig-5" },
        callback: "https://api.example/expire?token=tok-6&x=1",
        detail: "upstream said: Bearer tok-12 is not valid",
      },
      "connecting to amqp://guest:mq-pass-7@rabbitmq:5672 with Bearer tok-8",
    );
    logger.error({ err: new Error("connect failed: redis://:redis-pass-9@redis:6379") }, "boom");
    logger.warn({ url: "/internal/holds/x/expire?token=tok-13" }, "refused ?token=tok-14");
    const text = raw.join("");
    for (const secret of [
      "db-pass-1",
      "tok-2",
      "ck-3",
      "tok-4",
      "sig-5",
      "tok-6",
      "mq-pass-7",
      "tok-8",
      "redis-pass-9",
      "tok-12",
      "tok-13",
      "tok-14",
    ]) {
      expect(text).not.toContain(secret);
    }
    // What is not secret stays readable.
    expect(text).toContain("postgres://app:[redacted]@db:5432/cinema");
    expect(text).toContain("Bearer [redacted]");
    expect(text).toContain("?token=[redacted]&x=1");
    expect(text).toContain("https://r.example");
    expect(text).toContain('"type":"Error"');
  });
});

describe("request logs of the app", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase("pglite");
  });
  afterAll(() => database.close());

  it("carry the request id on every line, the same id as the response header and error body", async () => {
    const { logger, lines } = capture();
    const app = createTestApp(database.db, { logger });
    await createSessionVia(app);
    const missing = await call(app, "GET", `/sessions/${crypto.randomUUID()}`, undefined, {
      "x-request-id": "trace-42",
    });
    expect(missing.status).toBe(404);
    expect(missing.body.requestId).toBe("trace-42");
    expect(missing.headers.get("x-request-id")).toBe("trace-42");

    const logged = lines();
    expect(logged.length).toBe(2);
    for (const line of logged) expect(line.requestId).toEqual(expect.any(String));
    expect(logged[1]).toMatchObject({
      requestId: "trace-42",
      route: "/sessions/:id",
      status: 404,
      msg: "request",
    });
  });

  it("also name the request on lines that ports log while serving it (Node's request scope)", async () => {
    const { logger, lines, raw } = capture("debug");
    const slowRedis = {
      name: "redis",
      required: false,
      check: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        logger.warn({ backend: "redis" }, "redis slow; advisory locks take over");
        return { degraded: "slow" };
      },
    };
    const app = createTestApp(database.db, { logger, healthChecks: [slowRedis], runInRequestScope });
    const response = await app.request("/health");
    const requestId = response.headers.get("x-request-id");
    expect(lines().map((line) => [line.msg, line.requestId])).toEqual([
      ["redis slow; advisory locks take over", requestId],
      ["request", requestId],
    ]);
    // The scope and the bound logger both name the request: still one key per line.
    for (const line of raw) expect(line.match(/"requestId"/g)).toHaveLength(1);
  });

  it("log a 500 with its request id and the error, credentials masked", async () => {
    const { logger, lines, raw } = capture();
    const failing = {
      transaction: async () => {
        throw new Error("could not reach postgres://app:leaked-pw@db:5432/cinema");
      },
    } as unknown as Database;
    const app: TestApp = createTestApp(failing, { logger });
    const response = await call(app, "POST", "/reservations", {
      userId: "u",
      seatIds: [crypto.randomUUID()],
    });
    expect(response.status).toBe(500);
    expect(response.body.requestId).toEqual(expect.any(String));
    expect(raw.join("")).not.toContain("leaked-pw");
    const logged = lines();
    expect(logged.map((line) => line.msg)).toEqual(["unhandled error", "request failed"]);
    for (const line of logged) expect(line.requestId).toBe(response.body.requestId);
  });
});

const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("npm start's logs and metrics (a real process on PostgreSQL)", () => {
  it("logs JSON with request ids and no database password, and serves /metrics", async () => {
    const url = await createScratchDatabase(adminUrl as string);
    // Local connections are trusted, so the password is never checked, only carried.
    const withPassword = new URL(url);
    withPassword.password = "never-log-this-pw";
    const server = await startServerProcess({ DATABASE_URL: withPassword.toString(), LOG_LEVEL: "info" });
    try {
      const app = { request: (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init) };
      await createSessionVia(app as unknown as TestApp);
      await fetch(`${server.url}/no/such/route`);
      const metrics = parseSamples(await (await fetch(`${server.url}/metrics`)).text());
      expect(
        sampleValue(metrics, "http_request_duration_seconds_count", { route: "/sessions", status: "201" }),
      ).toBe(1);
      expect(sampleValue(metrics, "http_request_duration_seconds_count", { route: "unmatched" })).toBe(1);
      expect(sampleValue(metrics, "process_resident_memory_bytes")).toBeGreaterThan(0);
      expect(sampleValue(metrics, "holds_total", { outcome: "created" })).toBe(0);
    } finally {
      expect(await server.stop()).toBe(0);
      await dropScratchDatabase(adminUrl as string, url);
    }
    const output = server.output();
    expect(output).not.toContain("never-log-this-pw");
    const lines = output
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Line);
    const requests = lines.filter((line) => line.msg === "request");
    expect(requests.map((line) => line.route)).toEqual(["/sessions", "unmatched"]);
    for (const line of requests) expect(line.requestId).toEqual(expect.any(String));
    expect(lines.at(-1)?.msg).toBe("shutting down");
  });
});
