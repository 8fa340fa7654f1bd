import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { type ChannelModel, connect } from "amqplib";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { EVENTS_EXCHANGE } from "../src/events/amqp-publisher.ts";
import {
  type PostgresCluster,
  postgresBinDir,
  type StopMode,
  startPostgresCluster,
} from "./support/postgres-cluster.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";
import { type ProxyMode, startTcpProxy } from "./support/tcp-proxy.ts";

/**
 * The fault suite: three API processes under steady load on a private PostgreSQL cluster and,
 * through a TCP proxy of the test's own, on RabbitMQ. The test stops PostgreSQL (fast, then
 * immediate) and restarts it, stalls the broker path then resets it, drops its bytes, resets its
 * connections, and sends SIGTERM to one instance during each fault. Judged on the rows, the
 * broker's deliveries and the processes:
 * - no instance exits; no answer is a 5xx other than 503 (allowed while PostgreSQL is away);
 * - every instance is ready again within 2 s of PostgreSQL's return;
 * - every acknowledged hold, payment and cancellation is in the rows, and `npm run reconcile` holds;
 * - every committed event reaches `cinema.events` (counted by messageId, duplicates allowed),
 *   and none that did not commit;
 * - SIGTERM ends the instance by itself within SHUTDOWN_TIMEOUT_MS, fault or not.
 */

const binDir = postgresBinDir();
if (!binDir) {
  if (process.env.CI === "true")
    throw new Error(
      "faults.test.ts: initdb/pg_ctl not found (pg_config --bindir); under CI=true this suite must run",
    );
  console.warn(
    "skipped: test/faults.test.ts needs PostgreSQL's initdb and pg_ctl (pg_config --bindir) to start a private cluster",
  );
}
const amqpUrl = binDir ? serviceUrl("TEST_AMQP_URL") : undefined;

const SHUTDOWN_TIMEOUT_MS = 3_000;
/** How long each fault lasts while the load goes on. */
const FAULT_MS = 3_000;
const READY_WITHIN_MS = 2_000;
const WORKERS = 6;

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Answer = { status: number; body: any };
type Instance = { name: string; server: ServerProcess; inFlight: number };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(instance: Instance, method: string, path: string, body?: unknown): Promise<Answer> {
  instance.inFlight += 1;
  try {
    const response = await fetch(`${instance.server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  } catch (error) {
    return { status: 0, body: { error: String(error) } };
  } finally {
    instance.inFlight -= 1;
  }
}

/** Holds one seat at a time on the instances in rotation; pays a third, cancels a third. */
class Load {
  readonly statuses = new Map<number, number>();
  readonly unexpected: string[] = [];
  readonly held = new Set<string>();
  readonly paid = new Set<string>();
  readonly cancelled = new Set<string>();
  private running = false;
  private workers: Promise<void>[] = [];
  private next = 0;

  private readonly rotation: () => Instance[];
  private readonly seatIds: string[];

  constructor(rotation: () => Instance[], seatIds: string[]) {
    this.rotation = rotation;
    this.seatIds = seatIds;
  }

  private note(instance: Instance, what: string, answer: Answer) {
    this.statuses.set(answer.status, (this.statuses.get(answer.status) ?? 0) + 1);
    if (answer.status === 0 || (answer.status >= 500 && answer.status !== 503)) {
      // The instance's own log line for that request says what went wrong.
      const requestId = answer.body?.requestId as string | undefined;
      const logged = requestId
        ? instance.server
            .output()
            .split("\n")
            .filter((line) => line.includes(requestId))
        : [];
      this.unexpected.push(
        `${instance.name} ${what}: ${answer.status} ${JSON.stringify(answer.body)} ${logged.join(" ")}`,
      );
    }
  }

  private pick(): Instance | undefined {
    const instances = this.rotation();
    return instances[this.next++ % instances.length];
  }

  private async work(worker: number) {
    for (let round = 0; this.running; round++) {
      const instance = this.pick();
      if (!instance) return;
      const userId = `buyer-${worker}-${round}`;
      const seatId = this.seatIds[Math.floor(Math.random() * this.seatIds.length)] as string;
      const held = await send(instance, "POST", "/reservations", { userId, seatIds: [seatId] });
      this.note(instance, "hold", held);
      if (held.status === 201) {
        const id = held.body.id as string;
        this.held.add(id);
        const then = this.pick() ?? instance;
        if (round % 3 === 0) {
          const paid = await send(then, "POST", `/reservations/${id}/pay`, { userId });
          this.note(then, "pay", paid);
          if (paid.status === 200) this.paid.add(id);
        } else if (round % 3 === 1) {
          const cancelled = await send(then, "POST", `/reservations/${id}/cancel`, { userId });
          this.note(then, "cancel", cancelled);
          if (cancelled.status === 200) this.cancelled.add(id);
        }
      } else if (held.status !== 409) {
        // The database is away: do not spin.
        await sleep(50);
      }
    }
  }

  start() {
    this.running = true;
    this.workers = Array.from({ length: WORKERS }, (_, worker) => this.work(worker));
  }

  async stop() {
    this.running = false;
    await Promise.all(this.workers);
  }
}

describe.runIf(binDir && amqpUrl)(
  "faults under load: PostgreSQL stopped and restarted, the broker path stalled, dropped and reset",
  () => {
    let cluster: PostgresCluster;
    let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
    let consumer: ChannelModel;
    const delivered = new Map<string, number>();
    const sessionIds = new Set<string>();
    let instances: Instance[] = [];
    let rotation: Instance[] = [];
    let env: Record<string, string>;
    let load: Load;
    let generation = 0;
    const stopped: { name: string; code: number | null; output: string }[] = [];

    async function startInstance(name: string): Promise<Instance> {
      const instance = { name, server: await startServerProcess(env, 60_000), inFlight: 0 };
      instances.push(instance);
      return instance;
    }

    async function ready(instance: Instance): Promise<boolean> {
      try {
        return (await fetch(`${instance.server.url}/health/ready`, { signal: AbortSignal.timeout(1_000) }))
          .ok;
      } catch {
        return false;
      }
    }

    /** Milliseconds until each instance in rotation is ready, from now; Infinity for one that never was within 10 s. */
    async function timesToReady(): Promise<Record<string, number>> {
      const started = performance.now();
      const times = await Promise.all(
        rotation.map(async (instance) => {
          while (performance.now() - started < 10_000) {
            if (await ready(instance))
              return [instance.name, Math.round(performance.now() - started)] as const;
            await sleep(50);
          }
          return [instance.name, Number.POSITIVE_INFINITY] as const;
        }),
      );
      return Object.fromEntries(times);
    }

    /** Takes the last instance out of rotation, lets its requests finish, sends SIGTERM: answers its exit code (null: it had to be killed). */
    async function terminateVictim(): Promise<number | null> {
      const victim = rotation[rotation.length - 1] as Instance;
      rotation = rotation.slice(0, -1);
      for (let waited = 0; victim.inFlight > 0 && waited < 20_000; waited += 20) await sleep(20);
      // server.stop sends SIGKILL after 5 s: an exit code (not null) means it exited by itself before.
      const code = await victim.server.stop("SIGTERM");
      instances = instances.filter((instance) => instance !== victim);
      stopped.push({ name: victim.name, code, output: victim.server.output() });
      return code;
    }

    async function replaceVictim() {
      generation += 1;
      rotation = [...rotation, await startInstance(`victim-${generation}`)];
    }

    function expectNoInstanceExited() {
      for (const instance of instances) {
        expect(
          instance.server.process.exitCode === null && instance.server.process.signalCode === null,
          `${instance.name} exited:\n${instance.server.output()}`,
        ).toBe(true);
      }
    }

    async function rows<T>(text: string, values: unknown[] = []): Promise<T[]> {
      const client = new pg.Client({ connectionString: cluster.url });
      await client.connect();
      try {
        return (await client.query(text, values)).rows as T[];
      } finally {
        await client.end();
      }
    }

    async function expectAcknowledgedInRows() {
      const found = await rows<{ id: string; status: string; sold: boolean }>(
        `SELECT r.id, r.status, EXISTS (SELECT 1 FROM sales s WHERE s.reservation_id = r.id) AS sold
         FROM reservations r WHERE r.id = ANY($1::uuid[])`,
        [[...load.held]],
      );
      const byId = new Map(found.map((row) => [row.id, row]));
      const missing = [...load.held].filter((id) => !byId.has(id));
      expect(missing, "acknowledged holds missing from the rows").toEqual([]);
      for (const id of load.paid)
        expect(byId.get(id), `paid ${id}`).toMatchObject({ status: "CONFIRMED", sold: true });
      for (const id of load.cancelled) expect(byId.get(id)?.status, `cancelled ${id}`).toBe("CANCELLED");
    }

    function reconcile(): Promise<{ code: number | null; output: string }> {
      return new Promise((resolve) => {
        execFile(
          process.execPath,
          ["dist/reconcile.js"],
          {
            env: { PATH: process.env.PATH ?? "", DATABASE_URL: cluster.url, LOG_LEVEL: "silent" },
            timeout: 30_000,
          },
          (error, stdout, stderr) =>
            resolve({
              code: error ? ((error as { code?: number }).code ?? null) : 0,
              output: `${stdout}${stderr}`,
            }),
        );
      });
    }

    async function expectReconciled() {
      if (!existsSync("dist/reconcile.js"))
        throw new Error("dist/reconcile.js missing: npm run reconcile is part of the build");
      const result = await reconcile();
      expect(result.code, result.output).toBe(0);
    }

    /**
     * Waits (60 s at most) until every outbox row is published and delivered, then checks that the
     * deliveries are exactly the committed events: none lost, none extra. Answers the committed ids.
     */
    async function expectEveryCommittedEventDelivered(): Promise<Set<string>> {
      const committed = () =>
        rows<{ id: string; published: boolean }>(
          "SELECT id, published_at IS NOT NULL AS published FROM outbox",
        );
      const deadline = Date.now() + 60_000;
      let outbox = await committed();
      while (Date.now() < deadline && !outbox.every((row) => row.published && delivered.has(row.id))) {
        await sleep(200);
        outbox = await committed();
      }
      const ids = new Set(outbox.map((row) => row.id));
      expect(outbox.filter((row) => !row.published).length, "events never published").toBe(0);
      expect([...ids].filter((id) => !delivered.has(id)).length, "committed events never delivered").toBe(0);
      expect(
        [...delivered.keys()].filter((id) => !ids.has(id)),
        "delivered events that never committed",
      ).toEqual([]);
      return ids;
    }

    /** One line per fault for the run's log: what was answered, acknowledged and delivered. */
    function report(fault: string, extra: Record<string, unknown>) {
      const statuses = Object.fromEntries([...load.statuses].sort(([a], [b]) => a - b));
      const totals = { held: load.held.size, paid: load.paid.size, cancelled: load.cancelled.size };
      console.info(`fault ${fault}: ${JSON.stringify({ statuses, ...totals, ...extra })}`);
    }

    async function underLoad(fault: () => Promise<void>) {
      load.start();
      try {
        await sleep(500);
        await fault();
        await sleep(500);
      } finally {
        await load.stop();
      }
    }

    beforeAll(async () => {
      cluster = await startPostgresCluster(binDir as string);
      await migratePostgres(cluster.url);
      const broker = new URL(amqpUrl as string);
      proxy = await startTcpProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
      const viaProxy = new URL(amqpUrl as string);
      viaProxy.port = String(proxy.port);

      consumer = await connect(amqpUrl as string);
      const channel = await consumer.createChannel();
      await channel.assertExchange(EVENTS_EXCHANGE, "topic", { durable: true });
      const { queue } = await channel.assertQueue("", { exclusive: true });
      await channel.bindQueue(queue, EVENTS_EXCHANGE, "#");
      await channel.consume(
        queue,
        (message) => {
          if (!message) return;
          // Other suites may publish to cinema.events too: count only the events of our sessions.
          const body = JSON.parse(message.content.toString("utf8")) as { data?: { sessionId?: string } };
          if (!sessionIds.has(body.data?.sessionId ?? "")) return;
          const id = String(message.properties.messageId);
          delivered.set(id, (delivered.get(id) ?? 0) + 1);
        },
        { noAck: true },
      );

      env = {
        DATABASE_URL: cluster.url,
        AMQP_URL: viaProxy.toString(),
        DATABASE_POOL_SIZE: "4",
        RESERVATION_TTL_SECONDS: "600",
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        LOG_LEVEL: "warn",
      };
      rotation = [await startInstance("a"), await startInstance("b"), await startInstance("victim-0")];
      const seatIds: string[] = [];
      for (const movieId of ["faults-1", "faults-2"]) {
        const created = await send(rotation[0] as Instance, "POST", "/sessions", {
          movieId,
          room: "Fault room",
          startsAt: "2027-01-15T20:00:00Z",
          price: 9.5,
          rowsCount: 20,
          seatsPerRow: 30,
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        sessionIds.add(created.body.id);
        seatIds.push(...(created.body.seats as { id: string }[]).map((seat) => seat.id));
      }
      load = new Load(() => rotation, seatIds);
    }, 180_000);

    afterAll(async () => {
      try {
        await load?.stop();
        for (const instance of instances) await instance.server.stop("SIGKILL");
        await consumer?.close().catch(() => {});
        await proxy?.close();
      } finally {
        cluster?.destroy();
      }
    }, 60_000);

    it.each<StopMode>(["fast", "immediate"])(
      "PostgreSQL stopped -m %s under load: 503s while it is away, ready within 2 s of its return, nothing acknowledged lost",
      async (mode) => {
        let victimCode: number | null | undefined;
        let readyAfter: Record<string, number> = {};
        await underLoad(async () => {
          await cluster.stop(mode);
          await sleep(FAULT_MS / 2);
          victimCode = await terminateVictim();
          await sleep(FAULT_MS / 2);
          await cluster.start();
          readyAfter = await timesToReady();
        });
        expectNoInstanceExited();
        expect(load.unexpected.slice(0, 10)).toEqual([]);
        expect(load.statuses.get(503) ?? 0, "requests while the database was away").toBeGreaterThan(0);
        expect(victimCode, stopped.at(-1)?.output).not.toBeNull();
        for (const [name, ms] of Object.entries(readyAfter))
          expect(ms, `${name} ready after PostgreSQL's return`).toBeLessThanOrEqual(READY_WITHIN_MS);
        await expectAcknowledgedInRows();
        await expectReconciled();
        report(`postgres -m ${mode}`, { readyAfterMs: readyAfter, victimExit: victimCode });
        await replaceVictim();
      },
      120_000,
    );

    it.each<[string, ProxyMode | "reset"]>([
      ["stalled, then its connections reset", "pause"],
      ["dropping every byte", "drop"],
      ["reset", "reset"],
    ])(
      "the broker path %s under load: relays reconnect and every committed event is delivered",
      async (_what, fault) => {
        const acceptedBefore = proxy.accepted;
        let victimCode: number | null | undefined;
        await underLoad(async () => {
          if (fault === "reset") proxy.reset();
          else proxy.setMode(fault);
          await sleep(FAULT_MS / 2);
          victimCode = await terminateVictim();
          await sleep(FAULT_MS / 2);
          if (fault === "pause") proxy.reset();
          proxy.setMode("forward");
        });
        expectNoInstanceExited();
        expect(load.unexpected.slice(0, 10)).toEqual([]);
        expect(victimCode, stopped.at(-1)?.output).not.toBeNull();

        const ids = await expectEveryCommittedEventDelivered();
        expect(proxy.accepted, "relays reconnected through the proxy").toBeGreaterThan(acceptedBefore);
        await expectAcknowledgedInRows();
        await expectReconciled();
        const duplicates = [...delivered.values()].reduce((sum, count) => sum + count - 1, 0);
        report(`broker ${fault}`, {
          committedEvents: ids.size,
          deliveredDistinct: delivered.size,
          duplicates,
          connectionsThroughProxy: proxy.accepted - acceptedBefore,
          victimExit: victimCode,
        });
        await replaceVictim();
      },
      120_000,
    );

    it("PostgreSQL stopped -m fast while the relays' transactions wait on a stalled broker: no exit, the relays resume", async () => {
      const acceptedBefore = proxy.accepted;
      let victimCode: number | null | undefined;
      let readyAfter: Record<string, number> = {};
      await underLoad(async () => {
        // Holds commit; each relay claims them and waits for confirms, its transaction idle.
        proxy.setMode("pause");
        await sleep(FAULT_MS / 2);
        await cluster.stop("fast");
        await sleep(FAULT_MS / 2);
        victimCode = await terminateVictim();
        await cluster.start();
        readyAfter = await timesToReady();
        proxy.reset();
        proxy.setMode("forward");
      });
      expectNoInstanceExited();
      expect(load.unexpected.slice(0, 10)).toEqual([]);
      expect(victimCode, stopped.at(-1)?.output).not.toBeNull();
      for (const [name, ms] of Object.entries(readyAfter))
        expect(ms, `${name} ready after PostgreSQL's return`).toBeLessThanOrEqual(READY_WITHIN_MS);
      const ids = await expectEveryCommittedEventDelivered();
      await expectAcknowledgedInRows();
      await expectReconciled();
      report("postgres -m fast during a broker stall", {
        readyAfterMs: readyAfter,
        committedEvents: ids.size,
        connectionsThroughProxy: proxy.accepted - acceptedBefore,
        victimExit: victimCode,
      });
    }, 120_000);
  },
);
