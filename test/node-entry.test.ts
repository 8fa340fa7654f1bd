import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { SESSION } from "./support/app.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import {
  freePort,
  runServerToExit,
  type ServerProcess,
  startServerProcess,
} from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  return { status: response.status, body: (await response.json()) as any };
};

describe("npm start (the Node entry point)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "seats-embedded-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("serves the whole flow on the embedded database and keeps it across a restart", async () => {
    let server: ServerProcess = await startServerProcess({ DATA_DIR: dataDir });
    let saleId: string;
    try {
      const session = await post(`${server.url}/sessions`, SESSION);
      expect(session.status).toBe(201);
      const held = await post(`${server.url}/reservations`, {
        userId: "restart",
        seatIds: [session.body.seats[0].id],
      });
      expect(held.status).toBe(201);
      const paid = await post(`${server.url}/reservations/${held.body.id}/pay`, {});
      expect(paid.status).toBe(200);
      saleId = paid.body.sale.id;
      expect((await fetch(`${server.url}/api-docs`)).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      const history = await (await fetch(`${server.url}/sales/history/restart`)).json();
      expect(history).toEqual([expect.objectContaining({ saleId, seats: ["A1"] })]);
    } finally {
      await server.stop();
    }
  });

  it("refuses to start on invalid configuration, naming the variable", async () => {
    const result = await runServerToExit({ RESERVATION_TTL_SECONDS: "soon", DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.output).toContain("RESERVATION_TTL_SECONDS");
  });

  it("names in its start line where it listens, the migrations, the locks, the expiry and the events", async () => {
    const fresh = join(dataDir, "start-line");
    const server = await startServerProcess({ DATA_DIR: fresh, LOG_LEVEL: "info" });
    try {
      // The lines are written as the server starts serving; pino may flush them a moment later.
      const lines = await vi.waitFor(() => {
        const written = logLines(server.output());
        expect(written.map((line) => String(line.msg))).toContainEqual(
          expect.stringMatching(/^AMQP_URL is not set/),
        );
        return written;
      });
      const started = lines.find((line) => String(line.msg).startsWith("listening on "));
      expect(started).toMatchObject({
        level: "info",
        msg: `listening on ${server.url}`,
        address: server.url,
        database: `embedded PGlite in ${fresh}`,
        migrations: expect.stringMatching(/^\d+ of \d+ migrations applied now/),
        seatLocks: "PostgreSQL advisory locks (no Redis configured)",
        expiry: "the sweeper every 5000 ms (no QStash configured)",
        events: "not relayed by this instance (no AMQP_URL)",
      });
      expect(lines).toContainEqual(
        expect.objectContaining({ level: "warn", msg: expect.stringMatching(/^AMQP_URL is not set/) }),
      );
    } finally {
      await server.stop();
    }
  });
});

/** The JSON lines a process wrote; anything else (a stack trace) fails the parse. */
function logLines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A start-up failure: exit code 1 and exactly one fatal JSON line, no stack trace; answers its text. */
function oneFatalLine(result: { code: number | null; output: string }): string {
  expect(result.code, result.output).toBe(1);
  const lines = logLines(result.output);
  expect(lines, result.output).toHaveLength(1);
  expect(lines[0]?.level).toBe("fatal");
  expect(result.output).not.toMatch(/\n\s+at /);
  return String(lines[0]?.msg);
}

describe("start-up failures: one line saying what is wrong and what to do, exit 1, nothing opened", () => {
  const root = mkdtempSync(join(tmpdir(), "seats-start-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("a port in use stops the second instance before it opens the embedded database", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as AddressInfo).port;
    const untouched = join(root, "port-in-use");
    try {
      const message = oneFatalLine(await runServerToExit({ PORT: String(port), DATA_DIR: untouched }));
      expect(message).toContain(`127.0.0.1:${port}`);
      expect(message).toContain("EADDRINUSE");
      expect(message).toMatch(/set PORT/);
    } finally {
      holder.close();
    }
    expect(existsSync(untouched)).toBe(false);
  });

  it("HOST that is not an address of this machine", async () => {
    const message = oneFatalLine(
      await runServerToExit({
        HOST: "192.0.2.1",
        PORT: String(await freePort()),
        DATA_DIR: join(root, "host"),
      }),
    );
    expect(message).toMatch(/192\.0\.2\.1 is not an address of this machine.*set HOST/);
    expect(existsSync(join(root, "host"))).toBe(false);
  });

  it("a database server that does not answer", async () => {
    const closedPort = await freePort();
    const message = oneFatalLine(
      await runServerToExit({
        PORT: String(await freePort()),
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/seats`,
      }),
    );
    expect(message).toMatch(/^DATABASE_URL: nothing accepts connections at 127\.0\.0\.1:\d+\/seats/);
    expect(message).toMatch(/start PostgreSQL there or fix the host and port/);
  });

  it.each([
    [{ DATABASE_URL: "mysql://root@localhost/seats" }, "DATABASE_URL", /postgres:\/\/ or postgresql:\/\//],
    [{ DATABASE_URL: "seats.db" }, "DATABASE_URL", /unset it for the embedded database/],
    [{ REDIS_URL: "localhost:6379" }, "REDIS_URL", /redis:\/\/ or rediss:\/\//],
    [
      { UPSTASH_REDIS_REST_URL: "redis://example.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" },
      "UPSTASH_REDIS_REST_URL",
      /https:\/\//,
    ],
    [
      { UPSTASH_REDIS_REST_URL: "https://example.upstash.io" },
      "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN",
      /set together/,
    ],
    [{ AMQP_URL: "http://localhost:15672" }, "AMQP_URL", /amqp:\/\/ or amqps:\/\//],
    [{ QSTASH_TOKEN: "t", QSTASH_CURRENT_SIGNING_KEY: "a" }, "QSTASH_NEXT_SIGNING_KEY", /required/],
    [
      {
        QSTASH_TOKEN: "t",
        QSTASH_CURRENT_SIGNING_KEY: "a",
        QSTASH_NEXT_SIGNING_KEY: "b",
        PUBLIC_BASE_URL: "seats",
      },
      "PUBLIC_BASE_URL",
      /https:\/\//,
    ],
    [{ QSTASH_URL: "qstash.upstash.io" }, "QSTASH_URL", /https:\/\//],
    [{ HOST: " " }, "HOST", /address to bind/],
  ])("malformed settings %j", async (settings, variable, hint) => {
    const untouched = join(root, `config-${variable.replaceAll(" ", "-")}`);
    const message = oneFatalLine(await runServerToExit({ ...settings, DATA_DIR: untouched }));
    expect(message.startsWith(`Invalid configuration: ${variable}`)).toBe(true);
    expect(message).toMatch(hint);
    expect(existsSync(untouched)).toBe(false);
  });
});

const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("instances starting together on one PostgreSQL", () => {
  it("migrate once under a lock and all serve", async () => {
    const url = await createScratchDatabase(adminUrl as string);
    const servers = await Promise.all(
      [1, 2, 3].map(() => startServerProcess({ DATABASE_URL: url, EXPIRY_SWEEP_INTERVAL_MS: "200" })),
    );
    try {
      const session = await post(`${servers[0]?.url}/sessions`, SESSION);
      const seat = session.body.seats[0].id;
      const results = await Promise.all(
        servers.map((server, index) =>
          post(`${server.url}/reservations`, { userId: `u${index}`, seatIds: [seat] }),
        ),
      );
      expect(results.map((result) => result.status).sort()).toEqual([201, 409, 409]);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await dropScratchDatabase(adminUrl as string, url);
    }
  });
});

describe.skipIf(!adminUrl)("start-up against PostgreSQL: the API, the sidecar and db:migrate", () => {
  const missing = () => {
    const url = new URL(adminUrl as string);
    url.pathname = `/seats_missing_${process.pid}`;
    return url.toString();
  };

  it.each([
    ["npm start", ["dist/node.js"]],
    ["npm run sidecar", ["dist/sidecar.js"]],
    ["npm run db:migrate", ["dist/migrate.js"]],
  ])("%s names a database that does not exist and how to create it", async (_name, entry) => {
    const env = { DATABASE_URL: missing(), AMQP_URL: "amqp://127.0.0.1:1", PORT: String(await freePort()) };
    const message = oneFatalLine(await runServerToExit(env, entry));
    expect(message).toMatch(
      new RegExp(
        `^DATABASE_URL: database "seats_missing_${process.pid}" does not exist on .*; create it \\(createdb seats_missing_${process.pid}\\)`,
      ),
    );
  });

  it("the sidecar names the variable it lacks, and a malformed one", async () => {
    const lacking = oneFatalLine(await runServerToExit({ DATABASE_URL: missing() }, ["dist/sidecar.js"]));
    expect(lacking).toMatch(/^Invalid configuration: AMQP_URL: required by the sidecar/);
    const malformed = oneFatalLine(
      await runServerToExit({ DATABASE_URL: missing(), AMQP_URL: "rabbitmq:5672" }, ["dist/sidecar.js"]),
    );
    expect(malformed).toMatch(/^Invalid configuration: AMQP_URL: must be an amqp:\/\/ or amqps:\/\/ URL/);
  });

  it("db:migrate says how many migrations it applied, and none the second time", async () => {
    const url = await createScratchDatabase(adminUrl as string);
    try {
      const first = await runServerToExit({ DATABASE_URL: url }, ["dist/migrate.js"]);
      expect(first.code, first.output).toBe(0);
      expect(logLines(first.output)).toEqual([
        expect.objectContaining({ migrations: expect.stringMatching(/^(\d+) of \1 migrations applied now/) }),
      ]);
      const again = await runServerToExit({ DATABASE_URL: url }, ["dist/migrate.js"]);
      expect(logLines(again.output)).toEqual([
        expect.objectContaining({ migrations: expect.stringMatching(/^\d+ migrations, none pending/) }),
      ]);
    } finally {
      await dropScratchDatabase(adminUrl as string, url);
    }
  });
});
