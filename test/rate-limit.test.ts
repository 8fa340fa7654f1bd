import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtVerifier } from "../src/auth/jwt-verifier.ts";
import { createMemoryRateLimiter, type RateLimiter } from "../src/auth/rate-limit.ts";
import { createUpstashRateLimiter } from "../src/auth/rate-limit-upstash.ts";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { call, createTestApp, type TestApp } from "./support/app.ts";
import {
  createScratchDatabase,
  dropScratchDatabase,
  openTestDatabase,
  type TestDatabase,
} from "./support/database.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";
import { bearer, signHs256 } from "./support/tokens.ts";
import { startUpstashStandIn, type UpstashStandIn } from "./support/upstash-stand-in.ts";

const SECRET = "a-test-secret-of-at-least-32-characters!";
const auth = createJwtVerifier({ secret: SECRET, rolesClaim: "roles", clockSkewSeconds: 30 });
const token = async (sub: string) => bearer(await signHs256(SECRET, { sub }));
const adminUrl = serviceUrl("TEST_DATABASE_URL");
const redisUrl = serviceUrl("TEST_REDIS_URL");

/** Fixed windows are aligned to the clock: start right after a boundary so a burst stays in one window. */
async function startOfWindow(windowSeconds: number): Promise<void> {
  const windowMs = windowSeconds * 1000;
  await new Promise((resolve) => setTimeout(resolve, windowMs - (Date.now() % windowMs) + 20));
}

function expectRefusal(
  reply: { status: number; headers: Headers; body: { code?: string } },
  routeClass: string,
) {
  expect(reply.status).toBe(429);
  expect(reply.headers.get("content-type")).toBe("application/problem+json");
  expect(reply.body.code).toBe("RATE_LIMITED");
  expect(Number(reply.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(reply.headers.get("ratelimit-policy")).toMatch(new RegExp(`^"${routeClass}";q=\\d+;w=\\d+$`));
  expect(reply.headers.get("ratelimit")).toMatch(new RegExp(`^"${routeClass}";r=0;t=\\d+$`));
}

describe("rate limits in one instance's memory", () => {
  let database: TestDatabase;
  let app: TestApp;
  const WINDOW = 3;

  beforeAll(async () => {
    database = await openTestDatabase("pglite");
    const rateLimiter = createMemoryRateLimiter({
      reads: { limit: 3, windowSeconds: WINDOW },
      holds: { limit: 2, windowSeconds: WINDOW },
    });
    app = createTestApp(database.db, {
      auth,
      rateLimiter,
      clientAddress: (request) => request.headers.get("x-test-peer") ?? undefined,
    });
  });
  afterAll(() => database?.close());

  it("counts per buyer and per route class, answers 429 with the IETF headers, and recovers in the next window", async () => {
    const alice = await token("alice");
    await startOfWindow(WINDOW);
    const first = await call(app, "GET", "/me/reservations", undefined, alice);
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-policy")).toBe(`"reads";q=3;w=${WINDOW}`);
    expect(first.headers.get("ratelimit")).toMatch(/^"reads";r=2;t=\d+$/);
    await call(app, "GET", "/me/reservations", undefined, alice);
    await call(app, "GET", "/reservations/user/alice", undefined, alice);
    const refused = await call(app, "GET", "/me/sales", undefined, alice);
    expectRefusal(refused, "reads");

    // Another buyer, and another class of the same buyer, have counts of their own.
    expect((await call(app, "GET", "/me/reservations", undefined, await token("bob"))).status).toBe(200);
    const hold = await call(app, "POST", "/reservations", { seatIds: [crypto.randomUUID()] }, alice);
    expect(hold.status).toBe(404);
    expect(hold.headers.get("ratelimit")).toMatch(/^"holds";r=1;/);
    // Health, metrics and docs are never limited.
    for (let i = 0; i < 5; i++)
      expect((await call(app, "GET", "/health/live", undefined, alice)).status).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, Number(refused.headers.get("retry-after")) * 1000));
    expect((await call(app, "GET", "/me/sales", undefined, alice)).status).toBe(200);
  });

  it("counts callers without a token by their address", async () => {
    await startOfWindow(WINDOW);
    const session = `/sessions/${crypto.randomUUID()}`;
    const from = (peer: string) => call(app, "GET", session, undefined, { "x-test-peer": peer });
    for (let i = 0; i < 3; i++) expect((await from("192.0.2.1")).status).toBe(404);
    expectRefusal(await from("192.0.2.1"), "reads");
    expect((await from("192.0.2.2")).status).toBe(404);
  });
});

describe("rate limits shared through Upstash (REST stand-in on redis-server)", () => {
  let upstash: UpstashStandIn;
  let database: TestDatabase;
  let apps: TestApp[];
  const WINDOW = 3;

  beforeAll(async () => {
    upstash = await startUpstashStandIn({ redisUrl: redisUrl as string });
    database = await openTestDatabase("pglite");
    const prefix = `ratelimit-test-${crypto.randomUUID()}`;
    const limiter = (): RateLimiter =>
      createUpstashRateLimiter(
        upstash,
        { reads: { limit: 4, windowSeconds: WINDOW } },
        {
          timeoutMs: 2_000,
          prefix,
        },
      );
    // Two instances, each with its own limiter and memory, counting in one Redis.
    apps = [
      createTestApp(database.db, { auth, rateLimiter: limiter() }),
      createTestApp(database.db, { auth, rateLimiter: limiter() }),
    ];
  });
  afterAll(async () => {
    await database?.close();
    await upstash?.close();
  });

  it.skipIf(!redisUrl)(
    "refuses the fifth read of a buyer across both instances, then lets it through again",
    async () => {
      const carol = await token(`carol-${crypto.randomUUID()}`);
      await startOfWindow(WINDOW);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push((await call(apps[i % 2] as TestApp, "GET", "/me/sales", undefined, carol)).status);
      expect(statuses).toEqual([200, 200, 200, 200]);
      const refused = await call(apps[0] as TestApp, "GET", "/me/sales", undefined, carol);
      expectRefusal(refused, "reads");
      expectRefusal(await call(apps[1] as TestApp, "GET", "/me/sales", undefined, carol), "reads");
      await new Promise((resolve) =>
        setTimeout(resolve, Number(refused.headers.get("retry-after")) * 1000 + 50),
      );
      expect((await call(apps[1] as TestApp, "GET", "/me/sales", undefined, carol)).status).toBe(200);
    },
  );
});

describe.skipIf(!adminUrl || !redisUrl)(
  "rate limits across two server processes sharing Redis (REDIS_URL)",
  () => {
    let databaseUrl: string;
    let servers: ServerProcess[] = [];
    const WINDOW = 3;

    beforeAll(async () => {
      databaseUrl = await createScratchDatabase(adminUrl as string);
      await migratePostgres(databaseUrl);
      const env = {
        DATABASE_URL: databaseUrl,
        REDIS_URL: redisUrl as string,
        AUTH_JWT_SECRET: SECRET,
        RATE_LIMIT_READS: "5",
        RATE_LIMIT_WINDOW_SECONDS: String(WINDOW),
        EXPIRY_SWEEP_INTERVAL_MS: "600000",
      };
      servers = await Promise.all([startServerProcess(env, 60_000), startServerProcess(env, 60_000)]);
    });
    afterAll(async () => {
      await Promise.all(servers.map((server) => server.stop()));
      if (databaseUrl) await dropScratchDatabase(adminUrl as string, databaseUrl);
    });

    const get = async (server: ServerProcess, path: string, headers: Record<string, string>) => {
      const response = await fetch(`${server.url}${path}`, { headers });
      return { status: response.status, headers: response.headers, body: await response.json() };
    };

    it("counts one buyer's reads on both instances together, refuses past the limit, recovers in the next window", async () => {
      const dave = await token(`dave-${crypto.randomUUID()}`);
      const [a, b] = servers as [ServerProcess, ServerProcess];
      await startOfWindow(WINDOW);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get(i % 2 ? b : a, "/me/reservations", dave)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      const refused = await get(b, "/me/reservations", dave);
      expectRefusal(refused, "reads");
      expectRefusal(await get(a, "/me/sales", dave), "reads");
      // Another buyer is not affected; health is never limited.
      expect((await get(a, "/me/reservations", await token(`erin-${crypto.randomUUID()}`))).status).toBe(200);
      expect((await get(a, "/health", dave)).status).toBe(200);

      await new Promise((resolve) =>
        setTimeout(resolve, Number(refused.headers.get("retry-after")) * 1000 + 50),
      );
      expect((await get(a, "/me/reservations", dave)).status).toBe(200);
      expect((await get(b, "/me/reservations", dave)).status).toBe(200);
    });

    it("logs one open-mode warning when no auth is configured, and none with auth", async () => {
      expect(servers[0]?.output()).not.toMatch(/auth is disabled/);
      const open = await startServerProcess({ DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" }, 60_000);
      try {
        expect((await get(open, "/health", {})).body.auth).toBe("disabled");
        expect(open.output().match(/auth is disabled/g)).toHaveLength(1);
      } finally {
        await open.stop();
      }
    });
  },
);
