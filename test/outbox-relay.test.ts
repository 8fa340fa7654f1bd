import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { listenForOutboxEvents } from "../src/events/outbox-listener-node.ts";
import {
  type ClaimedEvent,
  claimPendingEvents,
  pruneOutbox,
  readOutboxBacklog,
} from "../src/events/outbox-queries.ts";
import type { OutgoingEvent } from "../src/events/publisher.ts";
import { relayBatch, startRelay } from "../src/events/relay.ts";
import { outboxHealthCheck, rabbitmqHealthCheck } from "../src/events/relay-health.ts";
import { keepReservationOrder } from "../src/events/relay-order.ts";
import { createSessionVia, createTestApp, hold } from "./support/app.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import {
  appendNumberedEvents,
  createRecordingPublisher,
  eventNumber,
  outboxRows,
  waitFor,
} from "./support/outbox.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";

function claimed(aggregateId: string, seq: number, pendingBefore: number): ClaimedEvent {
  return {
    seq,
    aggregateId,
    pendingBefore,
    envelope: { id: `e${seq}`, type: "seat.released", occurredAt: "", data: {} as never },
  };
}

describe("keepReservationOrder", () => {
  it("keeps a batch that holds every pending event of each reservation", () => {
    const batch = [claimed(A, 1, 0), claimed(B, 2, 0), claimed(A, 3, 1), claimed(B, 4, 1)];
    expect(keepReservationOrder(batch).map((event) => event.seq)).toEqual([1, 2, 3, 4]);
  });

  it("drops a reservation's events when an earlier one is held elsewhere, and only that reservation", () => {
    // A's seq 1 and 2 are in another relay's batch: this one got 3 and 5, with 2 pending before 3.
    const batch = [claimed(B, 2, 0), claimed(A, 3, 2), claimed(B, 4, 1), claimed(A, 5, 3)];
    expect(keepReservationOrder(batch).map((event) => event.seq)).toEqual([2, 4]);
  });

  it("keeps the prefix before a gap inside the batch and drops everything after it", () => {
    // A: 1 kept; 2 is held elsewhere (missing); 3 and 4 must wait.
    const batch = [claimed(A, 1, 0), claimed(A, 3, 2), claimed(A, 4, 3)];
    expect(keepReservationOrder(batch).map((event) => event.seq)).toEqual([1]);
  });
});

describe.each(availableDrivers())("outbox relay core on %s", (driver) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await openTestDatabase(driver, 6);
  });
  afterAll(() => database.close());
  beforeEach(async () => {
    await database.db.execute(sql`DELETE FROM outbox`);
  });

  it("publishes pending rows in seq order and marks exactly the confirmed ones", async () => {
    await appendNumberedEvents(database.db, A, 3);
    await appendNumberedEvents(database.db, B, 2);
    const broker = createRecordingPublisher();
    const result = await relayBatch(database.db, broker.publisher, {
      batchSize: 100,
      confirmTimeoutMs: 1_000,
    });
    expect(result).toMatchObject({ claimed: 5, published: 5 });
    const rows = await outboxRows(database.db);
    expect(rows.every((row) => row.published)).toBe(true);
    expect(broker.confirmed.map((event) => event.envelope.id).sort()).toEqual(
      rows.map((row) => row.id).sort(),
    );
    for (const aggregate of [A, B]) {
      const numbers = broker.confirmed
        .filter((e) => e.aggregateId === aggregate)
        .map((e) => eventNumber(e.envelope));
      expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    }
    const first = broker.confirmed[0] as OutgoingEvent;
    const row = rows.find((candidate) => candidate.id === first.envelope.id);
    expect(first.envelope).toEqual({
      id: row?.id,
      type: row?.type,
      occurredAt: row?.occurred_at,
      data: row?.payload,
    });
  });

  it("after a refused message marks only each reservation's confirmed prefix, and resumes there", async () => {
    await appendNumberedEvents(database.db, A, 4);
    await appendNumberedEvents(database.db, B, 4);
    let refuse = true;
    const broker = createRecordingPublisher({
      fail: (event) => refuse && event.aggregateId === A && eventNumber(event.envelope) === 1,
    });
    const failed = await relayBatch(database.db, broker.publisher, {
      batchSize: 100,
      confirmTimeoutMs: 1_000,
    });
    expect(failed.failure).toBeInstanceOf(Error);
    // Round 0 sent A0 and B0; round 1 sent A1 (refused) and B1; no round 2 after a failure.
    const published = (await outboxRows(database.db)).filter((row) => row.published);
    expect(
      published.map((row) => `${row.aggregate_id === A ? "A" : "B"}${eventNumber({ data: row.payload })}`),
    ).toEqual(["A0", "B0", "B1"]);

    refuse = false;
    const resumed = await relayBatch(database.db, broker.publisher, {
      batchSize: 100,
      confirmTimeoutMs: 1_000,
    });
    expect(resumed).toMatchObject({ claimed: 5, published: 5 });
    const aNumbers = broker.confirmed.filter((e) => e.aggregateId === A).map((e) => eventNumber(e.envelope));
    expect(aNumbers).toEqual([0, 1, 2, 3]);
  });

  it("gives a batch up when the broker does not confirm in time", async () => {
    await appendNumberedEvents(database.db, A, 2);
    const broker = createRecordingPublisher({ gate: () => new Promise(() => {}) });
    const result = await relayBatch(database.db, broker.publisher, { batchSize: 100, confirmTimeoutMs: 100 });
    expect(String(result.failure)).toMatch(/no publisher confirm within 100 ms/);
    expect((await readOutboxBacklog(database.db)).pending).toBe(2);
  });

  it("reports the backlog and prunes only published rows past the retention period", async () => {
    await appendNumberedEvents(database.db, A, 3);
    await database.db.execute(sql`UPDATE outbox SET occurred_at = now() - interval '90 seconds'`);
    const backlog = await readOutboxBacklog(database.db);
    expect(backlog.pending).toBe(3);
    expect(backlog.lagSeconds).toBeGreaterThanOrEqual(89);
    expect(backlog.lagSeconds).toBeLessThan(120);

    await appendNumberedEvents(database.db, B, 3);
    await database.db.execute(sql`
      UPDATE outbox SET published_at = now() - interval '2 hours'
      WHERE aggregate_id = ${B}::uuid AND payload->>'seatId' IN ('n0', 'n1')`);
    await database.db.execute(sql`
      UPDATE outbox SET published_at = now() - interval '10 minutes' WHERE payload->>'seatId' = 'n2' AND aggregate_id = ${B}::uuid`);
    expect(await pruneOutbox(database.db, 60 * 60 * 1000, 1)).toBe(2);
    const left = await outboxRows(database.db);
    expect(left).toHaveLength(4);
    expect(left.filter((row) => row.aggregate_id === A).every((row) => !row.published)).toBe(true);
    expect(await readOutboxBacklog(database.db)).toMatchObject({ pending: 3 });
  });

  it("backs off while the broker is down, then catches up; health reports both states", async () => {
    let down = true;
    const broker = createRecordingPublisher({ down: () => down });
    const failures: number[] = [];
    const relay = startRelay({
      db: database.db,
      publisher: broker.publisher,
      pollIntervalMs: 50,
      backoff: { initialMs: 20, maxMs: 200 },
      onError: (_error, retry) => failures.push(retry.delayMs),
    });
    const rabbitmq = rabbitmqHealthCheck(relay);
    const outbox = outboxHealthCheck(() => database.db, { relayInProcess: true, maxLagSeconds: 0 });
    try {
      await appendNumberedEvents(database.db, A, 5);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      // With a 20 ms..200 ms backoff, 1.2 s allows about ten attempts, not hundreds.
      expect(failures.length).toBeGreaterThanOrEqual(4);
      expect(failures.length).toBeLessThan(20);
      expect(Math.max(...failures)).toBeLessThanOrEqual(200);
      expect(broker.confirmed).toHaveLength(0);
      await expect(rabbitmq.check()).rejects.toThrow(/unreachable: connect ECONNREFUSED/);
      expect(await outbox.check()).toEqual({ degraded: expect.stringMatching(/^5 events pending/) });

      down = false;
      await waitFor(() => broker.confirmed.length === 5, 5_000, "catch-up");
      expect(broker.confirmed.map((event) => eventNumber(event.envelope))).toEqual([0, 1, 2, 3, 4]);
      await waitFor(() => relay.status().consecutiveFailures === 0, 5_000, "healthy status");
      expect(await rabbitmq.check()).toBe("ok");
      expect(await outbox.check()).toBe("ok");
    } finally {
      await relay.stop();
    }
  });

  it("wakes at once when told to instead of waiting for the next poll", async () => {
    const broker = createRecordingPublisher();
    const relay = startRelay({ db: database.db, publisher: broker.publisher, pollIntervalMs: 60_000 });
    try {
      await waitFor(() => broker.readyCalls() === 1, 5_000, "first pass");
      await new Promise((resolve) => setTimeout(resolve, 100));
      await appendNumberedEvents(database.db, A, 2);
      relay.wake();
      await waitFor(() => broker.confirmed.length === 2, 2_000, "woken publish");
    } finally {
      await relay.stop();
    }
  });
});

describe.runIf(availableDrivers().includes("postgres"))("outbox relays sharing PostgreSQL", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await openTestDatabase("postgres", 8);
  });
  afterAll(() => database.close());
  beforeEach(async () => {
    await database.db.execute(sql`DELETE FROM outbox`);
  });

  it("a second relay skips the rows the first holds and never overtakes it within a reservation", async () => {
    await appendNumberedEvents(database.db, A, 6);
    await appendNumberedEvents(database.db, B, 2);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let firstStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      firstStarted = resolve;
    });
    // Relay 1 claims A0..A3 and hangs in the broker with the rows locked.
    const slow = createRecordingPublisher({
      gate: () => {
        firstStarted();
        return held;
      },
    });
    const first = relayBatch(database.db, slow.publisher, { batchSize: 4, confirmTimeoutMs: 10_000 });
    await started;

    // SKIP LOCKED alone would hand relay 2 the rest of A: the order check is what holds it back.
    const peek = await database.db.transaction((tx) => claimPendingEvents(tx, 100));
    expect(
      peek.filter((event) => event.aggregateId === A).map((event) => eventNumber(event.envelope)),
    ).toEqual([4, 5]);

    const fast = createRecordingPublisher();
    const second = await relayBatch(database.db, fast.publisher, { batchSize: 100, confirmTimeoutMs: 1_000 });
    expect(second).toMatchObject({ claimed: 4, published: 2 });
    expect(fast.confirmed.map((event) => event.aggregateId)).toEqual([B, B]);

    release();
    expect(await first).toMatchObject({ claimed: 4, published: 4 });
    const third = await relayBatch(database.db, fast.publisher, { batchSize: 100, confirmTimeoutMs: 1_000 });
    expect(third).toMatchObject({ claimed: 2, published: 2 });
    const delivered = [...slow.confirmed, ...fast.confirmed.slice(2)].map((event) =>
      eventNumber(event.envelope),
    );
    expect(delivered).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("is woken through LISTEN when a hold commits: the app notifies after its commit", async () => {
    const broker = createRecordingPublisher();
    const relay = startRelay({ db: database.db, publisher: broker.publisher, pollIntervalMs: 60_000 });
    let listening = false;
    const listener = listenForOutboxEvents({
      url: database.url as string,
      onNotify: () => {
        listening = true;
        relay.wake();
      },
    });
    try {
      await waitFor(() => listening && broker.readyCalls() >= 1, 5_000, "listener");
      const app = createTestApp(database.db);
      const { seatIds } = await createSessionVia(app);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      const held = await hold(app, "listener-buyer", seatIds.slice(0, 2));
      expect(held.status).toBe(201);
      await waitFor(
        () => broker.confirmed.some((event) => event.aggregateId === held.body.id),
        3_000,
        "notified publish",
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      // No trigger notifies inside the writing transaction (drizzle/0006).
      const [trigger] = await queryRows<{ n: number }>(
        database.db,
        sql`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal`,
      );
      expect(trigger?.n).toBe(0);
    } finally {
      await listener.stop();
      await relay.stop();
    }
  });
});
