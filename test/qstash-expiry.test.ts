import { type ServerType, serve } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import type { HoldExpiryCallbacks } from "../src/expiry/hold-expiry.ts";
import { qstashHoldExpiry } from "../src/expiry/qstash.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import { type QStashStandIn, startQStashStandIn } from "./support/qstash-stand-in.ts";
import { freePort } from "./support/server-process.ts";

// Real PostgreSQL when it is configured: callbacks and payments then race on real row locks.
const driver = availableDrivers().at(-1) ?? "pglite";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Served = {
  app: TestApp;
  url: string;
  failures: string[];
  callbacks: HoldExpiryCallbacks;
  close(): Promise<void>;
};

describe(`hold expiry through QStash callbacks on ${driver}`, () => {
  let database: TestDatabase;
  let qstash: QStashStandIn;
  const servers: Served[] = [];

  /** The app on a real port, so the stand-in can call it back, with QStash as the config would set it. */
  async function serveApp(ttlSeconds: number, qstashUrl?: string): Promise<Served> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const failures: string[] = [];
    const callbacks = qstashHoldExpiry(
      {
        url: qstashUrl ?? qstash.url,
        token: qstash.token,
        currentSigningKey: qstash.currentSigningKey,
        nextSigningKey: qstash.nextSigningKey,
        publicBaseUrl: url,
      },
      { onError: (_error, action) => failures.push(action), timeoutMs: 1_000 },
    );
    const app = createTestApp(database.db, { reservationTtlSeconds: ttlSeconds, holdExpiry: callbacks });
    const server: ServerType = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
    const served = {
      app,
      url,
      failures,
      callbacks,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
    servers.push(served);
    return served;
  }

  beforeAll(async () => {
    database = await openTestDatabase(driver);
    qstash = await startQStashStandIn({ retryDelayMs: 300 });
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await qstash.close();
    await database.close();
  });

  const row = async (reservationId: string) => {
    const [found] = await queryRows<{ status: string; expiry_message_id: string | null }>(
      database.db,
      sql`SELECT status, expiry_message_id FROM reservations WHERE id = ${reservationId}::uuid`,
    );
    return found;
  };
  const expiredEvents = async (reservationId: string) =>
    (
      await queryRows<{ n: number }>(
        database.db,
        sql`SELECT count(*)::int AS n FROM outbox WHERE aggregate_id = ${reservationId}::uuid AND type = 'reservation.expired'`,
      )
    )[0]?.n;
  const messageOf = (reservationId: string) =>
    qstash.messages.find((m) => m.deduplicationId === reservationId);
  const callback = (served: Served, reservationId: string, signature?: string, body?: string) =>
    fetch(`${served.url}/internal/expire/${reservationId}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(signature ? { "upstash-signature": signature } : {}),
      },
      body: body ?? JSON.stringify({ reservationId }),
    });

  it("publishes a delayed, deduplicated callback per hold; at its time the callback expires the hold, once", async () => {
    const served = await serveApp(1);
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-a", [seatIds[0] as string]);
    expect(held.status).toBe(201);
    const message = messageOf(held.body.id);
    expect(message).toMatchObject({
      url: `${served.url}/internal/expire/${held.body.id}`,
      method: "POST",
      body: JSON.stringify({ reservationId: held.body.id }),
      state: "pending",
    });
    expect((message?.notBefore ?? 0) - Date.parse(held.body.createdAt)).toBeGreaterThanOrEqual(900);
    expect((await row(held.body.id))?.expiry_message_id).toBe(message?.messageId);

    const delivery = await qstash.waitForDelivery(message?.messageId as string, 10_000);
    expect(delivery.status).toBe(200);
    expect(await row(held.body.id)).toMatchObject({ status: "EXPIRED" });
    expect(await expiredEvents(held.body.id)).toBe(1);

    // QStash delivers at least once: the same callback again changes nothing.
    const again = await callback(
      served,
      held.body.id,
      qstash.sign(message?.url as string, message?.body as string),
    );
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ reservationId: held.body.id, outcome: "settled" });
    expect(await expiredEvents(held.body.id)).toBe(1);
    expect(served.failures).toEqual([]);
  });

  it("paying withdraws the callback, and a callback that still arrives leaves the sale alone", async () => {
    const served = await serveApp(1);
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-payer", [seatIds[1] as string]);
    const paid = await call(served.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(paid.status).toBe(200);
    const message = messageOf(held.body.id);
    expect(message?.state).toBe("cancelled");
    await sleep(1_300);
    expect(qstash.deliveries.filter((d) => d.messageId === message?.messageId)).toEqual([]);

    const late = await callback(
      served,
      held.body.id,
      qstash.sign(message?.url as string, message?.body as string),
    );
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ outcome: "settled" });
    expect(await row(held.body.id)).toMatchObject({ status: "CONFIRMED" });
    expect(await expiredEvents(held.body.id)).toBe(0);
  });

  it("refuses forged, stale, misdirected and tampered callbacks with 401, changing nothing", async () => {
    const served = await serveApp(1);
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-target", [seatIds[2] as string]);
    const other = await hold(served.app, "qstash-other", [seatIds[3] as string]);
    // The genuine callback is withdrawn, so the hold stays PENDING past its time for the forgeries.
    await served.callbacks.cancel(messageOf(held.body.id)?.messageId as string);
    await sleep(1_200);
    const id = held.body.id as string;
    const url = `${served.url}/internal/expire/${id}`;
    const body = JSON.stringify({ reservationId: id });
    const now = Math.floor(Date.now() / 1000);

    const attempts = {
      unsigned: await callback(served, id),
      garbage: await callback(served, id, "not-a-jwt"),
      "unknown key": await callback(served, id, qstash.sign(url, body, { key: "sig_someone_else" })),
      stale: await callback(served, id, qstash.sign(url, body, { issuedAt: now - 600 })),
      "not yet valid": await callback(served, id, qstash.sign(url, body, { issuedAt: now + 600 })),
      "other issuer": await callback(served, id, qstash.sign(url, body, { issuer: "NotUpstash" })),
      "for another reservation": await callback(
        served,
        id,
        qstash.sign(`${served.url}/internal/expire/${other.body.id}`, body),
      ),
      "tampered body": await callback(
        served,
        id,
        qstash.sign(url, body),
        JSON.stringify({ reservationId: id, x: 1 }),
      ),
    };
    for (const [name, response] of Object.entries(attempts)) {
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect((await response.json()).code).toBe("INVALID_SIGNATURE");
    }
    expect(await row(id)).toMatchObject({ status: "PENDING" });
    expect(await expiredEvents(id)).toBe(0);

    const genuine = await callback(served, id, qstash.sign(url, body));
    expect(genuine.status).toBe(200);
    expect(await genuine.json()).toMatchObject({ outcome: "expired" });
    expect(await row(id)).toMatchObject({ status: "EXPIRED" });
  });

  it("answers an early callback with 409 so QStash retries, and leaves the hold alone", async () => {
    const served = await serveApp(30);
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-early", [seatIds[4] as string]);
    const message = messageOf(held.body.id);
    const early = await callback(
      served,
      held.body.id,
      qstash.sign(message?.url as string, message?.body as string),
    );
    expect(early.status).toBe(409);
    expect((await early.json()).code).toBe("HOLD_NOT_DUE");
    expect(await row(held.body.id)).toMatchObject({ status: "PENDING" });
  });

  it("a late callback never touches the seat of the buyer who took it since", async () => {
    const served = await serveApp(1);
    const { session, seatIds } = await createSessionVia(served.app);
    const seat = seatIds[5] as string;
    const a = await hold(served.app, "qstash-late-a", [seat]);
    const message = messageOf(a.body.id);
    await served.callbacks.cancel(message?.messageId as string);
    await sleep(1_200);
    const b = await hold(served.app, "qstash-late-b", [seat]);
    expect(b.status).toBe(201);

    const late = await callback(
      served,
      a.body.id,
      qstash.sign(message?.url as string, message?.body as string),
    );
    expect(await late.json()).toMatchObject({ outcome: "expired" });
    expect(await row(b.body.id)).toMatchObject({ status: "PENDING" });
    const map = await call(served.app, "GET", `/sessions/${session.id}`);
    expect(map.body.seats.find((s: { id: string }) => s.id === seat)?.status).toBe("HELD");
    expect((await hold(served.app, "qstash-late-c", [seat])).status).toBe(409);
  });

  it("accepts callbacks signed with the next key once QStash rotates its keys", async () => {
    const served = await serveApp(1);
    qstash.rotateSigningKeys();
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-rotated", [seatIds[6] as string]);
    const delivery = await qstash.waitForDelivery(messageOf(held.body.id)?.messageId as string, 10_000);
    expect(delivery.status).toBe(200);
    expect(await row(held.body.id)).toMatchObject({ status: "EXPIRED" });
  });

  it("never fails a hold because QStash is down", async () => {
    const served = await serveApp(30, `http://127.0.0.1:${await freePort()}`);
    const { seatIds } = await createSessionVia(served.app);
    const held = await hold(served.app, "qstash-down", [seatIds[7] as string]);
    expect(held.status).toBe(201);
    expect(await row(held.body.id)).toMatchObject({ status: "PENDING", expiry_message_id: null });
    expect(served.failures).toEqual(["schedule"]);
  });
});
