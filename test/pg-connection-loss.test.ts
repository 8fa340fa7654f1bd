import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { isUnavailable } from "../src/db/errors.ts";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { createNodePostgresDatabase } from "../src/db/node-postgres.ts";
import { startRelay } from "../src/events/relay.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { openNeonTestDatabase } from "./support/neon-database.ts";
import { appendNumberedEvents, createRecordingPublisher, outboxRows, waitFor } from "./support/outbox.ts";
import { serviceUrl } from "./support/services.ts";

/**
 * A server connection that PostgreSQL ends while a client is checked out of the pool (a request's
 * transaction, the relay's transaction waiting on the broker): no process may die of it. Without
 * an `error` listener on the checked-out client, Node throws its 'error' event and the process
 * exits; vitest reports that as an unhandled error and fails the run.
 */
const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("PostgreSQL ending a connection that is checked out of the pool", () => {
  let url: string;
  let database: ReturnType<typeof createNodePostgresDatabase>;
  let admin: pg.Client;

  beforeAll(async () => {
    url = await createScratchDatabase(adminUrl as string);
    await migratePostgres(url);
    database = createNodePostgresDatabase(url, 4);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await database?.close();
    if (url) await dropScratchDatabase(adminUrl as string, url);
  });

  /** The connection a `db.transaction` checks out next, once it has ended. */
  function nextCheckoutEnded(): Promise<void> {
    return new Promise((resolve) =>
      database.pool.once("acquire", (client) => client.once("end", () => resolve())),
    );
  }

  it("fails the transaction as unavailable (a 503), and the pool serves the next query", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let backendPid: number | undefined;
    const ended = nextCheckoutEnded();
    const transaction = database.db.transaction(async (tx) => {
      const [row] = await queryRows<{ pid: number }>(tx, sql`SELECT pg_backend_pid() AS pid`);
      backendPid = row?.pid;
      await gate;
      await tx.execute(sql`SELECT 1`);
    });
    const outcome = transaction.then(
      () => undefined,
      (error: unknown) => error,
    );
    await waitFor(() => backendPid !== undefined, 10_000, "the transaction's backend");
    await admin.query("SELECT pg_terminate_backend($1)", [backendPid]);
    await ended;
    open();

    const error = await outcome;
    expect(error).toBeInstanceOf(Error);
    expect(isUnavailable(error)).toBe(true);
    const [row] = await queryRows<{ one: number }>(database.db, sql`SELECT 1 AS one`);
    expect(row?.one).toBe(1);
  });

  it("lets the relay whose transaction waits on a broker confirm fail that batch and publish it afterwards", async () => {
    await appendNumberedEvents(database.db, crypto.randomUUID(), 2);
    let open!: () => void;
    const confirms = new Promise<void>((resolve) => {
      open = resolve;
    });
    let waiting = false;
    const broker = createRecordingPublisher({
      gate: () => {
        waiting = true;
        return confirms;
      },
    });
    const ended = nextCheckoutEnded();
    const relay = startRelay({
      db: database.db,
      publisher: broker.publisher,
      pollIntervalMs: 50,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    try {
      await waitFor(() => waiting, 10_000, "the relay to wait on the broker");
      const [idle] = await queryRows<{ pid: number }>(
        database.db,
        sql`SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()`,
      );
      expect(idle).toBeDefined();
      await admin.query("SELECT pg_terminate_backend($1)", [idle?.pid]);
      await ended;
      open();
      await waitFor(
        async () => (await outboxRows(database.db)).every((row) => row.published),
        10_000,
        "the relay to publish the events after the lost connection",
      );
      // The failed batch counted as one failure; the pass that published them ends the streak.
      await waitFor(() => relay.status().consecutiveFailures === 0, 10_000, "the relay to recover");
    } finally {
      open();
      await relay.stop();
    }
  });
});

describe.skipIf(!adminUrl)(
  "PostgreSQL ending a connection checked out of the neon-serverless Pool (Deno, Bun)",
  () => {
    let database: Awaited<ReturnType<typeof openNeonTestDatabase>>;
    let admin: pg.Client;

    beforeAll(async () => {
      database = await openNeonTestDatabase(adminUrl as string, 4);
      admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
    });
    afterAll(async () => {
      await admin?.end();
      await database?.close();
    });

    it("fails the transaction as unavailable (a 503), and the pool serves the next query", async () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      let backendPid: number | undefined;
      const transaction = database.db.transaction(async (tx) => {
        const [row] = await queryRows<{ pid: number }>(tx, sql`SELECT pg_backend_pid() AS pid`);
        backendPid = row?.pid;
        await gate;
        await tx.execute(sql`SELECT 1`);
      });
      const outcome = transaction.then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitFor(() => backendPid !== undefined, 10_000, "the transaction's backend");
      await admin.query("SELECT pg_terminate_backend($1)", [backendPid]);
      await waitFor(
        async () =>
          (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [backendPid])).rowCount === 0,
        10_000,
        "the backend to end",
      );
      open();

      // The client sees its socket close by the time the transaction fails: its 'error' was emitted.
      const error = await outcome;
      expect(error).toBeInstanceOf(Error);
      expect(isUnavailable(error)).toBe(true);
      const [row] = await queryRows<{ one: number }>(database.db, sql`SELECT 1 AS one`);
      expect(row?.one).toBe(1);
    });
  },
);
