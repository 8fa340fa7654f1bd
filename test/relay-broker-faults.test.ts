import { spawn } from "node:child_process";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type NodeRelay, startNodeRelay } from "../src/events/relay-node.ts";
import { openEventCapture } from "./support/amqp.ts";
import { silentLogger } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import { appendNumberedEvents, outboxRows, waitFor } from "./support/outbox.ts";
import { serviceUrl } from "./support/services.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";

/**
 * The relay behind a TCP proxy of the test's own in front of RabbitMQ, which stalls the path,
 * drops its bytes and resets its connections. The consumer reads from RabbitMQ directly. What must
 * hold: the relay reconnects on its own, every committed event reaches the exchange (duplicates
 * allowed, losses and extras not), and stopping it ends within a bound whatever the broker does.
 */
const databaseUrl = serviceUrl("TEST_DATABASE_URL");
const amqpUrl = serviceUrl("TEST_AMQP_URL");

/** Longest a stop may take: the confirm wait of the batch in flight plus a bounded close. */
const STOP_BOUND_MS = 8_000;

describe.runIf(databaseUrl && amqpUrl)("outbox relay through a faulty path to RabbitMQ", () => {
  let database: TestDatabase;
  let capture: Awaited<ReturnType<typeof openEventCapture>>;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let relay: NodeRelay | undefined;

  beforeAll(async () => {
    database = await openTestDatabase("postgres", 4);
    capture = await openEventCapture(amqpUrl as string);
  });
  afterAll(async () => {
    await capture?.close();
    await database?.close();
  });
  beforeEach(async () => {
    capture.messages.length = 0;
    await database.db.execute(sql`DELETE FROM outbox`);
    const target = new URL(amqpUrl as string);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    const viaProxy = new URL(amqpUrl as string);
    viaProxy.port = String(proxy.port);
    relay = startNodeRelay({
      db: database.db,
      amqpUrl: viaProxy.toString(),
      databaseUrl: database.url,
      exchange: capture.exchange,
      logger: silentLogger,
      tuning: {
        batchSize: 50,
        pollIntervalMs: 100,
        backoff: { initialMs: 50, maxMs: 1_000 },
        confirmTimeoutMs: 1_000,
      },
    });
  });
  afterEach(async () => {
    proxy.setMode("forward");
    await relay?.stop();
    relay = undefined;
    await proxy.close();
  });

  async function append(count: number) {
    for (let index = 0; index < count; index++)
      await appendNumberedEvents(database.db, crypto.randomUUID(), 2);
  }

  /** Every committed row published and delivered: the delivered ids are exactly the committed ones. */
  async function expectEveryEventDelivered(what: string) {
    await waitFor(
      async () => {
        const rows = await outboxRows(database.db);
        const delivered = new Set(capture.messages.map((message) => message.messageId));
        return rows.every((row) => row.published && delivered.has(row.id));
      },
      30_000,
      what,
    );
    const rows = await outboxRows(database.db);
    const delivered = new Set(capture.messages.map((message) => message.messageId));
    expect([...delivered].sort()).toEqual(rows.map((row) => row.id).sort());
  }

  async function connectedOnce() {
    await append(1);
    await expectEveryEventDelivered("the first events");
    expect(proxy.live).toBeGreaterThan(0);
  }

  it("reconnects after a stall followed by a connection reset, and publishes what waited", async () => {
    await connectedOnce();
    const acceptedBefore = proxy.accepted;
    proxy.setMode("pause");
    await append(10);
    // The batch in flight gets no confirms: the relay gives it up and drops the link (no Close-Ok).
    await waitFor(
      () => (relay?.relay.status().consecutiveFailures ?? 0) >= 1,
      15_000,
      "the stalled batch to fail",
    );
    proxy.reset();
    proxy.setMode("forward");
    await expectEveryEventDelivered("the events held back by the stall");
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
  });

  it("reconnects after the path dropped every byte for a while, with nothing refused or reset", async () => {
    await connectedOnce();
    const acceptedBefore = proxy.accepted;
    proxy.setMode("drop");
    await append(10);
    // Confirms and heartbeats are lost: the link is declared dead and new handshakes time out.
    await waitFor(
      () => (relay?.relay.status().consecutiveFailures ?? 0) >= 2,
      20_000,
      "failures while dropping",
    );
    proxy.setMode("forward");
    await expectEveryEventDelivered("the events sent into the void");
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
  });

  it("stops within its bound while the broker path is stalled", async () => {
    await connectedOnce();
    proxy.setMode("pause");
    await append(5);
    await waitFor(
      async () => (await outboxRows(database.db)).some((row) => !row.published),
      5_000,
      "events waiting",
    );
    const stopping = relay?.stop();
    relay = undefined;
    const outcome = await Promise.race([
      stopping?.then(() => "stopped"),
      new Promise((resolve) => setTimeout(() => resolve("still running"), STOP_BOUND_MS)),
    ]);
    expect(outcome).toBe("stopped");
  });

  it("stops without waiting out a long confirm timeout; the batch it gave up goes out later", async () => {
    await relay?.stop();
    const viaProxy = new URL(amqpUrl as string);
    viaProxy.port = String(proxy.port);
    const patient = () =>
      startNodeRelay({
        db: database.db,
        amqpUrl: viaProxy.toString(),
        exchange: capture.exchange,
        logger: silentLogger,
        tuning: { pollIntervalMs: 100, confirmTimeoutMs: 60_000 },
      });
    relay = patient();
    await connectedOnce();
    proxy.setMode("pause");
    await append(5);
    // Give the relay time to claim the rows and send them into the stalled path.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stopping = relay.stop();
    relay = undefined;
    const outcome = await Promise.race([
      stopping.then(() => "stopped"),
      new Promise((resolve) => setTimeout(() => resolve("still waiting for confirms"), STOP_BOUND_MS)),
    ]);
    expect(outcome).toBe("stopped");
    proxy.reset();
    proxy.setMode("forward");
    relay = patient();
    await expectEveryEventDelivered("the events of the abandoned batch");
  });

  it("lets the sidecar exit by itself within SHUTDOWN_TIMEOUT_MS on SIGTERM while the broker path is stalled", async () => {
    await relay?.stop();
    relay = undefined;
    const viaProxy = new URL(amqpUrl as string);
    viaProxy.port = String(proxy.port);
    const sidecar = spawn(process.execPath, ["dist/sidecar.js"], {
      env: {
        PATH: process.env.PATH ?? "",
        DATABASE_URL: database.url as string,
        AMQP_URL: viaProxy.toString(),
        SHUTDOWN_TIMEOUT_MS: "3000",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    sidecar.stdout.on("data", (chunk) => {
      output += chunk;
    });
    sidecar.stderr.on("data", (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => sidecar.once("exit", (code) => resolve(code)));
    try {
      // The sidecar publishes to cinema.events, not to this suite's exchange: its marks tell.
      await append(1);
      await waitFor(
        async () => (await outboxRows(database.db)).every((row) => row.published),
        30_000,
        "the sidecar's first events",
      );
      proxy.setMode("pause");
      await append(5);
      // Its batch is now waiting for confirms that cannot come.
      await new Promise((resolve) => setTimeout(resolve, 500));
      sidecar.kill("SIGTERM");
      const outcome = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve("still running"), STOP_BOUND_MS)),
      ]);
      expect(outcome, output).not.toBe("still running");
      expect(outcome, output).not.toBeNull();
    } finally {
      sidecar.kill("SIGKILL");
    }
  });
});
