import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expireAllOverdueHolds } from "../src/booking/expire.ts";
import { queryRows } from "../src/db/database.ts";
import { createAmqpPublisher } from "../src/events/amqp-publisher.ts";
import { listenForOutboxEvents } from "../src/events/outbox-listener-node.ts";
import { readOutboxBacklog } from "../src/events/outbox-queries.ts";
import type { EventPublisher } from "../src/events/publisher.ts";
import { startRelay } from "../src/events/relay.ts";
import { type NodeRelay, startNodeRelay } from "../src/events/relay-node.ts";
import { type CapturedMessage, openEventCapture } from "./support/amqp.ts";
import { call, createSessionVia, createTestApp, hold, silentLogger } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import { appendNumberedEvents, eventNumber, type OutboxRow, outboxRows, waitFor } from "./support/outbox.ts";
import { serviceUrl } from "./support/services.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";

const databaseUrl = serviceUrl("TEST_DATABASE_URL");
const amqpUrl = serviceUrl("TEST_AMQP_URL");

/** Events as committed, one per outbox row, compared with what the broker delivered. */
function expectOneToOne(rows: OutboxRow[], messages: CapturedMessage[]) {
  expect(messages.map((message) => message.messageId).sort()).toEqual(rows.map((row) => row.id).sort());
  const byId = new Map(messages.map((message) => [message.messageId, message]));
  for (const row of rows) {
    const message = byId.get(row.id) as CapturedMessage;
    expect(message.routingKey).toBe(row.type);
    expect(message.body).toEqual({
      id: row.id,
      type: row.type,
      occurredAt: row.occurred_at,
      data: row.payload,
    });
    expect(message).toMatchObject({ contentType: "application/json", deliveryMode: 2, type: row.type });
    expect(message.headers).toMatchObject({ "aggregate-id": row.aggregate_id, "outbox-seq": row.seq });
  }
}

/** Per reservation, the first delivery of each event follows the order the events committed in. */
function expectReservationOrder(rows: OutboxRow[], messages: CapturedMessage[]) {
  const seqOf = new Map(rows.map((row) => [row.id, row.seq]));
  const seen = new Set<string>();
  const lastSeq = new Map<string, number>();
  for (const message of messages) {
    if (seen.has(message.messageId)) continue;
    seen.add(message.messageId);
    const aggregate = String(message.headers["aggregate-id"]);
    const seq = seqOf.get(message.messageId) as number;
    expect(seq, `event ${message.messageId} of ${aggregate} arrived out of order`).toBeGreaterThan(
      lastSeq.get(aggregate) ?? 0,
    );
    lastSeq.set(aggregate, seq);
  }
}

describe.runIf(databaseUrl && amqpUrl)("outbox relay on RabbitMQ", () => {
  let database: TestDatabase;
  let capture: Awaited<ReturnType<typeof openEventCapture>>;
  let relay: NodeRelay | undefined;

  beforeAll(async () => {
    database = await openTestDatabase("postgres", 12);
    capture = await openEventCapture(amqpUrl as string);
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
  });
  afterAll(async () => {
    await capture?.close();
    await database?.close();
  });

  const drained = async (what: string) => {
    await waitFor(async () => (await readOutboxBacklog(database.db)).pending === 0, 15_000, what);
    const rows = await outboxRows(database.db);
    await waitFor(() => capture.messages.length >= rows.length, 5_000, `${what}: deliveries`);
    // A moment for anything duplicated or invented to show up too.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return rows;
  };

  it("delivers every committed change once, as committed, and nothing for what did not commit", async () => {
    relay = startNodeRelay({
      db: database.db,
      amqpUrl: amqpUrl as string,
      databaseUrl: database.url,
      exchange: capture.exchange,
      logger: silentLogger,
    });
    const app = createTestApp(database.db);
    const shortHolds = createTestApp(database.db, { reservationTtlSeconds: 1 });
    const { seatIds } = await createSessionVia(app);
    const seat = (index: number) => seatIds[index] as string;

    const alice = await hold(app, "alice", [seat(0), seat(1)]);
    const bob = await hold(app, "bob", [seat(2)]);
    expect((await hold(app, "mallory", [seat(2), seat(3)])).status).toBe(409);
    expect((await call(app, "POST", `/reservations/${alice.body.id}/pay`)).status).toBe(200);
    expect((await call(app, "POST", `/reservations/${alice.body.id}/pay`)).status).toBe(200);
    expect((await call(app, "POST", `/reservations/${bob.body.id}/cancel`, { userId: "bob" })).status).toBe(
      200,
    );
    const dave = await hold(shortHolds, "dave", [seat(4), seat(5), seat(6)]);
    const erin = await hold(shortHolds, "erin", [seat(7)]);
    expect([alice.status, bob.status, dave.status, erin.status]).toEqual([201, 201, 201, 201]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await expireAllOverdueHolds(database.db)).toBe(2);

    const rows = await drained("flow events");
    expectOneToOne(rows, capture.messages);
    expectReservationOrder(rows, capture.messages);

    const count = (type: string) => capture.messages.filter((message) => message.routingKey === type).length;
    const committed = await queryRows<{ status: string; n: number; seats: number }>(
      database.db,
      sql`SELECT r.status, count(DISTINCT r.id)::int AS n, count(rs.seat_id)::int AS seats
          FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id GROUP BY r.status`,
    );
    const of = (status: string) => committed.find((row) => row.status === status) ?? { n: 0, seats: 0 };
    const [{ sales } = { sales: -1 }] = await queryRows<{ sales: number }>(
      database.db,
      sql`SELECT count(*)::int AS sales FROM sales`,
    );
    expect(count("reservation.created")).toBe(of("CONFIRMED").n + of("CANCELLED").n + of("EXPIRED").n);
    expect(count("reservation.created")).toBe(4);
    expect(count("payment.confirmed")).toBe(sales);
    expect(sales).toBe(1);
    expect(count("reservation.cancelled")).toBe(of("CANCELLED").n);
    expect(count("reservation.expired")).toBe(of("EXPIRED").n);
    expect(count("seat.released")).toBe(of("CANCELLED").seats + of("EXPIRED").seats);
    expect(count("seat.released")).toBe(5);
    const users = capture.messages.map((message) => message.body.data.userId).filter(Boolean);
    expect(users).not.toContain("mallory");
    const daveEvents = capture.messages.filter((message) => message.headers["aggregate-id"] === dave.body.id);
    expect(daveEvents.map((message) => message.routingKey)).toEqual([
      "reservation.created",
      "reservation.expired",
      "seat.released",
      "seat.released",
      "seat.released",
    ]);
  });

  it("keeps every event of a burst while the broker is unreachable and delivers them after, in order", async () => {
    capture.messages.length = 0;
    await database.db.execute(sql`DELETE FROM outbox`);
    const proxy = await startTcpProxy({ host: new URL(amqpUrl as string).hostname, port: 5672 });
    const viaProxy = new URL(amqpUrl as string);
    viaProxy.port = String(proxy.port);
    await proxy.close();
    relay = startNodeRelay({
      db: database.db,
      amqpUrl: viaProxy.toString(),
      databaseUrl: database.url,
      exchange: capture.exchange,
      logger: silentLogger,
      tuning: { batchSize: 20, backoff: { initialMs: 50, maxMs: 400 }, confirmTimeoutMs: 2_000 },
    });
    const app = createTestApp(database.db);
    const { seatIds } = await createSessionVia(app, { rowsCount: 10, seatsPerRow: 10 });
    const burst = async (from: number, to: number) => {
      const held = await Promise.all(
        Array.from({ length: to - from }, (_, index) =>
          hold(app, `burst-${from + index}`, [seatIds[from + index] as string]),
        ),
      );
      expect(held.every((response) => response.status === 201)).toBe(true);
      await Promise.all(
        held.map((response, index) =>
          index % 3 === 0
            ? call(app, "POST", `/reservations/${response.body.id}/pay`)
            : index % 3 === 1
              ? call(app, "POST", `/reservations/${response.body.id}/cancel`, {
                  userId: response.body.userId,
                })
              : Promise.resolve(),
        ),
      );
    };

    // Broker down: the API keeps committing, the relay keeps backing off.
    await burst(0, 30);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(capture.messages).toHaveLength(0);
    expect((await readOutboxBacklog(database.db)).pending).toBeGreaterThanOrEqual(30 + 20);
    expect(relay.relay.status()).toMatchObject({ brokerConnected: false });
    expect(relay.relay.status().consecutiveFailures).toBeGreaterThanOrEqual(2);
    expect(relay.relay.status().consecutiveFailures).toBeLessThan(30);

    // Back, then down again in the middle of the next burst, then back for good.
    await proxy.open();
    const second = burst(30, 60);
    await waitFor(() => capture.messages.length > 0, 10_000, "first deliveries after the broker is back");
    await proxy.close();
    await second;
    await burst(60, 70);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await proxy.open();

    const rows = await drained("burst events");
    const distinct = new Set(capture.messages.map((message) => message.messageId));
    expect([...distinct].sort()).toEqual(rows.map((row) => row.id).sort());
    expect(rows.every((row) => row.published)).toBe(true);
    expectReservationOrder(rows, capture.messages);
    expect(capture.messages.length - distinct.size).toBeLessThanOrEqual(40);
    const firstDelivery = new Map<string, CapturedMessage>();
    for (const message of capture.messages)
      if (!firstDelivery.has(message.messageId)) firstDelivery.set(message.messageId, message);
    expectOneToOne(rows, [...firstDelivery.values()]);
    await proxy.close();
  });

  it("lets several relays share one outbox without delivering a row twice or out of order", async () => {
    capture.messages.length = 0;
    await database.db.execute(sql`DELETE FROM outbox`);
    const inFlight = new Map<string, number>();
    const publishCalls = new Map<string, number>();
    let overlaps = 0;
    const relays = Array.from({ length: 3 }, () => {
      const amqp = createAmqpPublisher({ url: amqpUrl as string, exchange: capture.exchange });
      let published = 0;
      // The real publisher, slowed a little so that the relays' batches overlap in time.
      const publisher: EventPublisher = {
        ...amqp,
        publish: async (event) => {
          const id = event.envelope.id;
          if ((inFlight.get(id) ?? 0) > 0) overlaps += 1;
          inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
          publishCalls.set(id, (publishCalls.get(id) ?? 0) + 1);
          try {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
            await amqp.publish(event);
            published += 1;
          } finally {
            inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
          }
        },
      };
      const relay = startRelay({ db: database.db, publisher, batchSize: 7, pollIntervalMs: 200 });
      const listener = listenForOutboxEvents({ url: database.url as string, onNotify: () => relay.wake() });
      return {
        published: () => published,
        stop: async () => {
          await listener.stop();
          await relay.stop();
          await amqp.close();
        },
      };
    });
    try {
      // 40 reservations, each written in 3 transactions of 1-4 events, interleaved across reservations.
      const aggregates = Array.from({ length: 40 }, () => crypto.randomUUID());
      await Promise.all(
        aggregates.map(async (aggregate, index) => {
          let next = 0;
          for (let step = 0; step < 3; step++) {
            const size = 1 + ((index + step) % 4);
            await appendNumberedEvents(database.db, aggregate, size, next);
            next += size;
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
          }
        }),
      );
      const rows = await drained("shared outbox");
      expect(overlaps).toBe(0);
      expect([...publishCalls.values()].every((calls) => calls === 1)).toBe(true);
      expectOneToOne(rows, capture.messages);
      expectReservationOrder(rows, capture.messages);
      for (const aggregate of aggregates) {
        const numbers = capture.messages
          .filter((message) => message.headers["aggregate-id"] === aggregate)
          .map((message) => eventNumber(message.body));
        expect(numbers).toEqual(numbers.map((_, index) => index));
      }
      const shares = relays.map((relay) => relay.published());
      expect(shares.reduce((sum, share) => sum + share, 0)).toBe(rows.length);
      expect(shares.filter((share) => share > 0).length).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(relays.map((relay) => relay.stop()));
    }
  });
});
