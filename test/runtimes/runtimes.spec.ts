import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.ts";
import { migratePostgres } from "../../src/db/migrate-node.ts";
import { createNodePostgresDatabase } from "../../src/db/node-postgres.ts";
import { swaggerUi } from "../../src/routes/docs/swagger-ui-assets.ts";
import { SESSION } from "../support/app.ts";
import { createScratchDatabase, dropScratchDatabase } from "../support/database.ts";
import { type NeonProxyStandIn, startNeonProxyStandIn } from "../support/neon-proxy-stand-in.ts";
import { type QStashStandIn, startQStashStandIn } from "../support/qstash-stand-in.ts";
import { node22Binary, type RuntimeName, startRuntime } from "../support/runtime-process.ts";
import type { ServerProcess } from "../support/server-process.ts";
import { serviceUrl } from "../support/services.ts";
import { signHs256 } from "../support/tokens.ts";
import { startUpstashStandIn, type UpstashStandIn } from "../support/upstash-stand-in.ts";

/**
 * `npm run test:runtimes`: one black-box HTTP suite against the app served by Node, Bun, Deno and
 * workerd (`wrangler dev`, offline), each through its real entry point, on the machine's PostgreSQL
 * and Redis. The edge runtimes reach them as they would reach Neon and Upstash in production:
 * PostgreSQL through the Neon WebSocket proxy stand-in (or pg over TCP sockets), seat locks through
 * the Upstash REST stand-in, hold expiry through the QStash stand-in calling the app back.
 */
const adminUrl = serviceUrl("TEST_DATABASE_URL");
const redisUrl = serviceUrl("TEST_REDIS_URL");

const TTL_SECONDS = 2;
// Long enough that an expiry seen in the suite is the QStash callback's (or the cron's), not the sweeper's.
const SWEEP_INTERVAL_MS = 600_000;

// Auth on, as in production: HS256 tokens of this secret; every request below carries one.
const AUTH = {
  AUTH_JWT_SECRET: "runtimes-suite-secret-of-32-characters-or-more",
  AUTH_ISSUER: "https://issuer.runtimes.test/",
  AUTH_AUDIENCE: "seat-reservation",
  METRICS_TOKEN: "runtimes-suite-metrics-token",
  // Rate limits stay on, counted in the Upstash stand-in that every runtime here shares: the one
  // organiser creates every session of the suite, more than the default 10 a minute.
  RATE_LIMIT_SESSIONS: "1000",
};
const ORGANISER = "runtimes-organiser";

/** A bearer token for `sub`; the organiser's carries the `organizer` role. */
async function tokenFor(sub: string): Promise<string> {
  const roles = sub === ORGANISER ? ["organizer"] : [];
  return signHs256(AUTH.AUTH_JWT_SECRET, { sub, roles, iss: AUTH.AUTH_ISSUER, aud: AUTH.AUTH_AUDIENCE });
}

type Target = { runtime: RuntimeName; database: "pg" | "neon-serverless"; label: string };
const TARGETS: Target[] = [
  { runtime: "node", database: "pg", label: `Node ${process.versions.node}` },
  ...(node22Binary() ? [{ runtime: "node22", database: "pg", label: "Node 22" } as const] : []),
  { runtime: "bun", database: "pg", label: "Bun" },
  { runtime: "deno", database: "neon-serverless", label: "Deno" },
  { runtime: "workerd", database: "neon-serverless", label: "workerd" },
  { runtime: "workerd", database: "pg", label: "workerd" },
];

// biome-ignore lint/suspicious/noExplicitAny: black-box replies of any shape
type Reply = { status: number; headers: Headers; body: any };

describe.skipIf(!adminUrl || !redisUrl)("one HTTP suite on Node, Bun, Deno and workerd", () => {
  let databaseUrl: string;
  let rows: ReturnType<typeof createNodePostgresDatabase>;
  let neonProxy: NeonProxyStandIn;
  let qstash: QStashStandIn;
  let upstash: UpstashStandIn;

  beforeAll(async () => {
    databaseUrl = await createScratchDatabase(adminUrl as string);
    // Migrations run from Node, never from the edge.
    await migratePostgres(databaseUrl);
    rows = createNodePostgresDatabase(databaseUrl, 2);
    neonProxy = await startNeonProxyStandIn();
    qstash = await startQStashStandIn({ retryDelayMs: 500 });
    upstash = await startUpstashStandIn({ redisUrl: redisUrl as string });
  });
  afterAll(async () => {
    await upstash?.close();
    await qstash?.close();
    await neonProxy?.close();
    await rows?.close();
    if (databaseUrl) await dropScratchDatabase(adminUrl as string, databaseUrl);
  });

  const statusOf = async (reservationId: string) =>
    (
      await queryRows<{ status: string }>(
        rows.db,
        sql`SELECT status FROM reservations WHERE id = ${reservationId}::uuid`,
      )
    )[0]?.status;

  describe.each(TARGETS)("$label ($database)", ({ runtime, database }) => {
    let server: ServerProcess;
    let base: string;

    /**
     * Sends as the body's `userId` when it names one, else as the organiser (who creates sessions
     * and reads anything); `as: null` sends no token, an explicit Authorization header wins.
     */
    async function send(
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
      as?: string | null,
    ) {
      const user = as === undefined ? ((body as { userId?: string } | undefined)?.userId ?? ORGANISER) : as;
      const authorization: Record<string, string> =
        user === null ? {} : { authorization: `Bearer ${await tokenFor(user)}` };
      const sent = { ...authorization, ...headers };
      const response = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? sent : { "content-type": "application/json", ...sent },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON (the Prometheus text of /metrics)
      }
      return { status: response.status, headers: response.headers, body: parsed } as Reply;
    }

    const newSession = async () => {
      const created = await send("POST", "/sessions", { ...SESSION, rowsCount: 2, seatsPerRow: 5 });
      expect(created.status).toBe(201);
      return created.body as { id: string; seats: { id: string; label: string }[] };
    };
    const messageOf = (reservationId: string) =>
      qstash.messages.find((m) => m.deduplicationId === reservationId);

    beforeAll(async () => {
      server = await startRuntime(runtime, (url) => ({
        DATABASE_URL: databaseUrl,
        ...(database === "neon-serverless" ? { NEON_WEBSOCKET_PROXY: neonProxy.url } : {}),
        UPSTASH_REDIS_REST_URL: upstash.url,
        UPSTASH_REDIS_REST_TOKEN: upstash.token,
        QSTASH_TOKEN: qstash.token,
        QSTASH_URL: qstash.url,
        QSTASH_CURRENT_SIGNING_KEY: qstash.currentSigningKey,
        QSTASH_NEXT_SIGNING_KEY: qstash.nextSigningKey,
        PUBLIC_BASE_URL: url,
        RESERVATION_TTL_SECONDS: String(TTL_SECONDS),
        EXPIRY_SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
        LOG_LEVEL: "warn",
        ...AUTH,
      }));
      base = server.url;
    });
    afterAll(async () => {
      await server?.stop();
    });

    it("serves Swagger UI with its assets from its own bundle", async () => {
      const page = await fetch(`${base}/api-docs`);
      expect(page.status).toBe(200);
      const bundle = /src="([^"]+\/swagger-ui-bundle\.js)"/.exec(await page.text())?.[1];
      const script = await fetch(`${base}${bundle}`);
      expect(script.status).toBe(200);
      expect(script.headers.get("content-type")).toContain("text/javascript");
      expect((await script.text()) === swaggerUi.bundle).toBe(true);
    });

    it("reports its database and its seat locks (Upstash REST) healthy", async () => {
      const health = await send("GET", "/health");
      expect(health.status).toBe(200);
      expect(health.body.checks.database.status).toBe("ok");
      expect(health.body.checks.redis.status).toBe("ok");
    });

    it("creates a session, holds, refuses a conflicting hold, pays and lists the sale", async () => {
      const session = await newSession();
      const [a1, a2, a3] = session.seats.map((seat) => seat.id);
      const lockCommands = upstash.received.length;
      const neonConnections = neonProxy.connections();

      const held = await send("POST", "/reservations", { userId: `${runtime}-buyer`, seatIds: [a2, a1] });
      expect(held.status).toBe(201);
      expect(held.body).toMatchObject({ status: "PENDING", totalPrice: 25, sessionId: session.id });
      expect(upstash.received.length).toBeGreaterThan(lockCommands);
      if (database === "neon-serverless") {
        expect(neonProxy.connections()).toBeGreaterThan(0);
        // Workers open (and close) a pool per request: every request is a new WebSocket.
        if (runtime === "workerd") expect(neonProxy.connections()).toBeGreaterThan(neonConnections);
      }

      const conflict = await send("POST", "/reservations", { userId: `${runtime}-rival`, seatIds: [a3, a2] });
      expect(conflict.status).toBe(409);
      expect(conflict.body).toMatchObject({ code: "SEAT_UNAVAILABLE", seatIds: [a2] });
      expect(conflict.headers.get("content-type")).toContain("application/problem+json");

      const paid = await send("POST", `/reservations/${held.body.id}/pay`, { userId: `${runtime}-buyer` });
      expect(paid.status).toBe(200);
      expect(paid.body.status).toBe("CONFIRMED");
      expect(messageOf(held.body.id)?.state).toBe("cancelled");

      const history = await send("GET", `/sales/history/${runtime}-buyer`);
      expect(history.status).toBe(200);
      expect(history.body).toContainEqual(
        expect.objectContaining({ saleId: paid.body.sale.id, seats: ["A1", "A2"], amount: 25 }),
      );
      const map = await send("GET", `/sessions/${session.id}`);
      expect(map.body.counts).toMatchObject({ sold: 2, held: 0 });
    });

    it("replays an Idempotency-Key and refuses its reuse for another body", async () => {
      const session = await newSession();
      const [b1, b2] = session.seats.slice(5).map((seat) => seat.id);
      const key = { "idempotency-key": `${runtime}-${database}-key` };
      const first = await send("POST", "/reservations", { userId: `${runtime}-idem`, seatIds: [b1] }, key);
      expect(first.status).toBe(201);
      const again = await send("POST", "/reservations", { userId: `${runtime}-idem`, seatIds: [b1] }, key);
      expect(again.status).toBe(201);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.body.id).toBe(first.body.id);
      const other = await send("POST", "/reservations", { userId: `${runtime}-idem`, seatIds: [b2] }, key);
      expect(other.status).toBe(422);
      expect(other.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
    });

    it("expires a hold through its QStash callback, refuses forged callbacks, frees the seat", async () => {
      const session = await newSession();
      const seat = session.seats[9]?.id as string;
      const held = await send("POST", "/reservations", { userId: `${runtime}-late`, seatIds: [seat] });
      expect(held.status).toBe(201);
      const message = messageOf(held.body.id);
      expect(message?.url).toBe(`${base}/internal/expire/${held.body.id}`);

      const forged = await fetch(message?.url as string, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "upstash-signature": qstash.sign(message?.url as string, message?.body as string, {
            key: "sig_forged",
          }),
        },
        body: message?.body,
      });
      expect(forged.status).toBe(401);
      expect(await statusOf(held.body.id)).toBe("PENDING");

      const delivery = await qstash.waitForDelivery(message?.messageId as string, 15_000);
      expect(delivery.status).toBe(200);
      expect(await statusOf(held.body.id)).toBe("EXPIRED");
      expect((await send("GET", `/reservations/${held.body.id}`)).body.status).toBe("EXPIRED");
      expect(
        (await send("POST", `/reservations/${held.body.id}/pay`, { userId: `${runtime}-late` })).body.code,
      ).toBe("RESERVATION_EXPIRED");
      expect(
        (await send("POST", "/reservations", { userId: `${runtime}-next`, seatIds: [seat] })).status,
      ).toBe(201);
    });

    it("with auth on: a buyer holds, pays and reads only their own; another buyer sees 404; organisers create sessions", async () => {
      const buyer = `${runtime}-${database}-ann`;
      const rival = `${runtime}-${database}-ben`;
      expect((await send("GET", "/me/reservations", undefined, {}, null)).status).toBe(401);
      const forged = await send("GET", "/me/reservations", undefined, { authorization: "Bearer x.y.z" });
      expect(forged.status).toBe(401);
      expect(forged.headers.get("www-authenticate")).toMatch(/^Bearer/);
      const byBuyer = await send(
        "POST",
        "/sessions",
        { ...SESSION, rowsCount: 1, seatsPerRow: 2 },
        {},
        buyer,
      );
      expect(byBuyer.status).toBe(403);
      const session = await newSession();

      const held = await send("POST", "/reservations", { seatIds: [session.seats[0]?.id] }, {}, buyer);
      expect(held.status).toBe(201);
      expect(held.body.userId).toBe(buyer);
      expect(held.headers.get("ratelimit-policy")).toMatch(/^"holds";q=\d+;w=\d+$/);
      for (const [method, path] of [
        ["GET", `/reservations/${held.body.id}`],
        ["POST", `/reservations/${held.body.id}/pay`],
        ["POST", `/reservations/${held.body.id}/cancel`],
      ] as const) {
        expect((await send(method, path, undefined, {}, rival)).status, `${method} ${path}`).toBe(404);
      }
      expect((await send("GET", `/sales/history/${buyer}`, undefined, {}, rival)).status).toBe(403);
      const paid = await send("POST", `/reservations/${held.body.id}/pay`, undefined, {}, buyer);
      expect(paid.status).toBe(200);
      expect(paid.body.status).toBe("CONFIRMED");
      const mine = await send("GET", "/me/sales", undefined, {}, buyer);
      expect(mine.status).toBe(200);
      expect(mine.body).toEqual([expect.objectContaining({ reservationId: held.body.id })]);
      expect((await send("GET", "/me/sales", undefined, {}, rival)).body).toEqual([]);
      expect((await send("GET", "/health", undefined, {}, null)).body.auth).toBe("enabled");
    });

    it("answers /metrics where the runtime collects metrics (Node) and says so elsewhere", async () => {
      const metrics = await send("GET", "/metrics", undefined, {
        authorization: `Bearer ${AUTH.METRICS_TOKEN}`,
      });
      if (runtime === "node" || runtime === "node22") {
        expect(metrics.status).toBe(200);
        expect(String(metrics.body)).toContain("http_request");
      } else {
        expect(metrics.status).toBe(501);
        expect(metrics.body.code).toBe("METRICS_NOT_COLLECTED");
      }
    });

    it.runIf(runtime === "workerd")(
      "sweeps a hold whose callback was lost when the Cron Trigger fires",
      async () => {
        const session = await newSession();
        const held = await send("POST", "/reservations", {
          userId: `${runtime}-cron`,
          seatIds: [session.seats[4]?.id],
        });
        const message = messageOf(held.body.id);
        const cancelled = await fetch(`${qstash.url}/v2/messages/${message?.messageId}`, {
          method: "DELETE",
          headers: { authorization: `Bearer ${qstash.token}` },
        });
        expect(cancelled.status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 300));
        expect(await statusOf(held.body.id)).toBe("PENDING");
        const cron = await fetch(`${base}/__scheduled?cron=${encodeURIComponent("* * * * *")}`);
        expect(cron.status).toBe(200);
        expect(await statusOf(held.body.id)).toBe("EXPIRED");
      },
    );
  });
});
