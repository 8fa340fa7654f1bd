import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeSeatHints } from "../src/entry/node-seat-hints.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp, useTestApp } from "./support/app.ts";
import {
  availableDrivers,
  type DriverName,
  openTestDatabase,
  type TestDatabase,
} from "./support/database.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { nextEvent, readSse, type SseReader } from "./support/sse.ts";

const quiet = { warn() {} };

/** An app whose streams hear of changes the way `npm start` wires them (LISTEN, or PGlite's listener). */
function useStreamingApp(
  driver: DriverName,
  overrides: { reservationTtlSeconds?: number; heartbeatMs?: number } = {},
) {
  const suite = {} as { database: TestDatabase; app: TestApp; stop: () => Promise<void> };
  beforeAll(async () => {
    suite.database = await openTestDatabase(driver);
    const hints = await nodeSeatHints(suite.database.url, suite.database, quiet);
    suite.stop = hints.stop;
    suite.app = createTestApp(suite.database.db, {
      seatChangeHints: hints.hints,
      reservationTtlSeconds: overrides.reservationTtlSeconds ?? 30,
      seatStreamHeartbeatMs: overrides.heartbeatMs,
    });
  });
  afterAll(async () => {
    await suite.stop();
    await suite.database.close();
  });
  return suite;
}

async function openStream(app: TestApp, sessionId: string, headers: Record<string, string> = {}) {
  const response = await app.request(`/sessions/${sessionId}/stream`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  return readSse(response);
}

const parse = (data: string | undefined) => JSON.parse(data ?? "null");

describe.each(availableDrivers())("live seat map on %s", (driver) => {
  const suite = useStreamingApp(driver);
  const streams: SseReader[] = [];
  afterAll(() => Promise.all(streams.map((stream) => stream.close())));

  it("starts with a snapshot, then pushes each hold, payment and cancellation as it commits", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const stream = await openStream(suite.app, session.id);
    streams.push(stream);
    const snapshot = await nextEvent(stream);
    expect(snapshot.event).toBe("snapshot");
    const etag = (await call(suite.app, "GET", `/sessions/${session.id}/seats`)).headers.get("etag");
    expect(`"${snapshot.id}"`).toBe(etag);
    expect(parse(snapshot.data).seats).toHaveLength(40);
    expect(parse(snapshot.data).counts).toEqual({ total: 40, available: 40, held: 0, sold: 0 });

    const held = await hold(suite.app, "alice", [seatIds[0] as string, seatIds[1] as string]);
    const onHold = await nextEvent(stream);
    expect(onHold.event).toBe("change");
    expect(parse(onHold.data).seats).toEqual([
      { id: seatIds[0], status: "HELD" },
      { id: seatIds[1], status: "HELD" },
    ]);
    expect(`"${onHold.id}"`).toBe(
      (await call(suite.app, "GET", `/sessions/${session.id}/seats`)).headers.get("etag"),
    );

    await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    const onPay = await nextEvent(stream);
    expect(parse(onPay.data).seats.map((seat: { status: string }) => seat.status)).toEqual(["SOLD", "SOLD"]);
    expect(parse(onPay.data).counts).toMatchObject({ sold: 2, held: 0 });

    const other = await hold(suite.app, "bob", [seatIds[7] as string]);
    expect(parse((await nextEvent(stream)).data).seats).toEqual([{ id: seatIds[7], status: "HELD" }]);
    await call(suite.app, "POST", `/reservations/${other.body.id}/cancel`);
    expect(parse((await nextEvent(stream)).data).seats).toEqual([{ id: seatIds[7], status: "AVAILABLE" }]);
  });

  it("Last-Event-ID: the current version resumes without a snapshot, an old one gets a snapshot", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const first = await openStream(suite.app, session.id);
    const before = await nextEvent(first);
    await first.close();
    await hold(suite.app, "carol", [seatIds[2] as string]);
    const current = (await call(suite.app, "GET", `/sessions/${session.id}/seats`)).headers.get(
      "etag",
    ) as string;

    const stale = await openStream(suite.app, session.id, { "last-event-id": before.id as string });
    streams.push(stale);
    const caughtUp = await nextEvent(stale);
    expect(caughtUp.event).toBe("snapshot");
    expect(`"${caughtUp.id}"`).toBe(current);
    expect(parse(caughtUp.data).seats[2]).toEqual({ id: seatIds[2], status: "HELD" });

    const resumed = await openStream(suite.app, session.id, { "last-event-id": current.slice(1, -1) });
    streams.push(resumed);
    await hold(suite.app, "carol", [seatIds[3] as string]);
    const next = await nextEvent(resumed);
    expect(next.event).toBe("change");
    expect(parse(next.data).seats).toEqual([{ id: seatIds[3], status: "HELD" }]);
  });

  it("an unknown session is 404 before any stream opens", async () => {
    const response = await call(suite.app, "GET", `/sessions/${crypto.randomUUID()}/stream`);
    expect(response.status).toBe(404);
    expect(response.body.code).toBe("SESSION_NOT_FOUND");
  });
});

describe.each(availableDrivers())("live seat map heartbeats and expiry on %s", (driver) => {
  const suite = useStreamingApp(driver, { reservationTtlSeconds: 1, heartbeatMs: 100 });

  it("sends heartbeats while idle and pushes a hold running out at its end, with no sweeper", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const stream = await openStream(suite.app, session.id);
    try {
      expect((await stream.next()).event).toBe("snapshot");
      expect((await stream.next()).comment).toBe("heartbeat");
      await hold(suite.app, "dave", [seatIds[4] as string]);
      expect(parse((await nextEvent(stream)).data).seats).toEqual([{ id: seatIds[4], status: "HELD" }]);
      const expired = await nextEvent(stream, 5_000);
      expect(parse(expired.data).seats).toEqual([{ id: seatIds[4], status: "AVAILABLE" }]);
    } finally {
      await stream.close();
    }
  });
});

describe("live seat map without change hints (Cloudflare Workers)", () => {
  const suite = useTestApp("pglite");

  it("answers 501 STREAM_NOT_AVAILABLE, pointing at ETag polling", async () => {
    const { session } = await createSessionVia(suite.app);
    const response = await call(suite.app, "GET", `/sessions/${session.id}/stream`);
    expect(response.status).toBe(501);
    expect(response.body.code).toBe("STREAM_NOT_AVAILABLE");
    expect(response.body.detail).toContain("If-None-Match");
  });
});

describe.skipIf(!availableDrivers().includes("postgres"))("live seat map across two server processes", () => {
  let database: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    database = await openTestDatabase("postgres", 2);
    const env = { DATABASE_URL: database.url as string };
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.close();
  });

  it("a client of instance B sees a hold made on instance A within one second", async () => {
    const created = await fetch(`${a.url}/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        movieId: "m",
        room: "R",
        startsAt: "2026-12-24T20:00:00Z",
        price: 10,
        rowsCount: 2,
        seatsPerRow: 5,
      }),
    });
    const session = (await created.json()) as { id: string; seats: { id: string }[] };
    const stream = readSse(await fetch(`${b.url}/sessions/${session.id}/stream`));
    try {
      expect((await nextEvent(stream)).event).toBe("snapshot");
      const seatId = session.seats[3]?.id as string;
      const started = Date.now();
      const held = await fetch(`${a.url}/reservations`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId: "erin", seatIds: [seatId] }),
      });
      expect(held.status).toBe(201);
      // The bound the issue sets; the push comes from a NOTIFY, usually within milliseconds.
      const change = await nextEvent(stream, 1_000);
      console.info(`instance B pushed instance A's hold ${Date.now() - started} ms after the request began`);
      expect(parse(change.data).seats).toEqual([{ id: seatId, status: "HELD" }]);
    } finally {
      await stream.close();
    }
  });

  it("a shutting-down instance ends its open streams, so it exits at once and cleanly", async () => {
    const session = (await (await fetch(`${a.url}/sessions?limit=1`)).json()) as { items: { id: string }[] };
    const stream = readSse(await fetch(`${b.url}/sessions/${session.items[0]?.id}/stream`));
    expect((await nextEvent(stream)).event).toBe("snapshot");
    const stopped = b.stop();
    await expect(stream.next(5_000)).rejects.toThrow("stream ended");
    expect(await stopped).toBe(0);
  });
});
