import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../src/db/migrate-node.ts";
import worker from "../src/entry/worker.ts";
import { SESSION } from "./support/app.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { serviceUrl } from "./support/services.ts";

const adminUrl = serviceUrl("TEST_DATABASE_URL");

/**
 * The Worker's entry point, called in-process as workerd calls it: one isolate (this module), one
 * `env` object for every request, and `ctx.waitUntil` collecting the work left after a response.
 * The HTTP suite on workerd itself is test/runtimes.
 */
describe.skipIf(!adminUrl)("the Worker entry: one app per isolate, one database pool per request", () => {
  let url: string;
  let env: Record<string, string>;
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (work: Promise<unknown>) => void pending.push(work) };

  beforeAll(async () => {
    url = await createScratchDatabase(adminUrl as string);
    await migratePostgres(url);
    env = { DATABASE_URL: url, LOG_LEVEL: "silent" };
  });
  afterAll(() => dropScratchDatabase(adminUrl as string, url));

  const send = async (method: string, path: string, body?: unknown) => {
    const response = await worker.fetch(
      new Request(`http://worker.test${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
      env,
      ctx,
    );
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
    return { status: response.status, body: (await response.json()) as any };
  };

  /** Connections to the scratch database other than the one asking. */
  const openConnections = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
      return rows[0]?.n;
    } finally {
      await client.end();
    }
  };

  it("serves requests at once, each on its own database, and closes every pool after its response", async () => {
    const session = await send("POST", "/sessions", SESSION);
    expect(session.status).toBe(201);
    const seats: string[] = session.body.seats.map((seat: { id: string }) => seat.id);

    // Concurrent requests in one isolate: each reads its own pool from its async context.
    const disjoint = await Promise.all(
      seats
        .slice(0, 8)
        .map((seat, index) => send("POST", "/reservations", { userId: `u${index}`, seatIds: [seat] })),
    );
    expect(disjoint.map((answer) => answer.status)).toEqual(Array(8).fill(201));
    const contested = await Promise.all(
      ["a", "b", "c"].map((user) => send("POST", "/reservations", { userId: user, seatIds: [seats[9]] })),
    );
    expect(contested.map((answer) => answer.status).sort()).toEqual([201, 409, 409]);

    // A request after those pools closed still gets a database of its own (no client kept over).
    await Promise.all(pending.splice(0));
    const read = await send("GET", `/sessions/${session.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.seats.filter((seat: { status: string }) => seat.status === "HELD")).toHaveLength(9);

    await Promise.all(pending.splice(0));
    expect(await openConnections()).toBe(0);
  });

  it("answers /health with the request's database, the outbox entry included", async () => {
    const health = await send("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.checks.database.status).toBe("ok");
    expect(health.body.checks.outbox.status).toBe("ok");
    await Promise.all(pending.splice(0));
  });
});
