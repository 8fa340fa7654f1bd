import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcile } from "../src/booking/reconcile.ts";
import { noTelemetry } from "../src/booking/telemetry.ts";
import { ConfigError, parseEnv } from "../src/env.ts";
import { advisorySeatLock } from "../src/seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../src/seat-lock/failover.ts";
import { createTcpRedisSeatLock, type TcpRedisSeatLock } from "../src/seat-lock/tcp-redis.ts";
import { call, createSessionVia, createTestApp, hold, type TestApp, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";
import { CLUSTER_START_MS, type RedisClusterUnderTest, startRedisCluster } from "./support/redis-cluster.ts";
import { waitFor } from "./support/redis-server.ts";
import { clusterLocks } from "./support/seat-locks.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";

describe("REDIS_CLUSTER_NODES", () => {
  it("takes host:port and redis:// seeds, with credentials and TLS", () => {
    expect(parseEnv({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001" }).redisCluster).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      tls: false,
    });
    expect(
      parseEnv({ REDIS_CLUSTER_NODES: "rediss://app:s%3Acret@cache.internal:6380" }).redisCluster,
    ).toEqual({
      nodes: [{ host: "cache.internal", port: 6380 }],
      username: "app",
      password: "s:cret",
      tls: true,
    });
    expect(parseEnv({}).redisCluster).toBeUndefined();
  });

  it.each([["10.0.0.1"], ["10.0.0.1:0"], ["http://10.0.0.1:7000"], ["10.0.0.1:7000,"], ["redis://h:7000/2"]])(
    "refuses %s, naming the variable",
    (value) => {
      expect(() => parseEnv({ REDIS_CLUSTER_NODES: value })).toThrow(/REDIS_CLUSTER_NODES: must be/);
    },
  );

  it("refuses REDIS_URL beside it", () => {
    expect(() => parseEnv({ REDIS_URL: "redis://localhost:6379", REDIS_CLUSTER_NODES: "h:7000" })).toThrow(
      ConfigError,
    );
  });
});

// Contention needs real PostgreSQL; the cluster needs redis-server and redis-cli (required under CI).
const withCluster =
  availableDrivers().includes("postgres") && clusterLocks().length > 0 ? describe : describe.skip;

withCluster("bookings on a three-master Redis Cluster that loses a master mid-run", () => {
  const suite = useTestApp("postgres", { poolSize: 20 });
  let cluster: RedisClusterUnderTest;
  let tcp: TcpRedisSeatLock;
  let app: TestApp;
  const events: string[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    tcp = createTcpRedisSeatLock({ cluster: { nodes: cluster.nodes, tls: false }, timeoutMs: 300 });
    await tcp.connect();
    const telemetry = {
      ...noTelemetry,
      lockAcquisition: (backend: string, result: string) => events.push(`${backend}:${result}`),
      lockFallback: (active: boolean) => events.push(`fallback:${active}`),
    };
    const seatLock = createFailoverSeatLock({
      primary: tcp,
      fallback: advisorySeatLock,
      timeoutMs: 300,
      cooldownMs: 1_000,
      telemetry,
    });
    app = createTestApp(suite.database.db, {
      seatLock,
      telemetry,
      healthChecks: [{ name: "redis", required: false, check: () => seatLock.check() }],
    });
  }, CLUSTER_START_MS);
  afterAll(async () => {
    await tcp?.close();
    await cluster?.close();
  });

  it("never sells a seat twice, never answers 5xx, reports the fallback, and is back on the cluster once the master returns", async () => {
    // The master killed below must carry at least one session's locks (a session's keys share its
    // hash tag), else the run would never meet the failure: six random sessions miss a given master
    // one time in eleven.
    const victim = new Redis({ ...cluster.nodes[0], lazyConnect: true });
    await victim.connect();
    const mine = String(await victim.call("CLUSTER", "NODES"))
      .split("\n")
      .find((line) => line.includes("myself"))
      ?.split(" ")
      .slice(8)
      .map((range) => range.split("-").map(Number)) as number[][];
    const onVictim = async (sessionId: string) => {
      const slot = Number(await victim.call("CLUSTER", "KEYSLOT", `{${sessionId}}`));
      return mine.some(([from, to = from]) => slot >= (from as number) && slot <= (to as number));
    };
    const sessions = await Promise.all(
      Array.from({ length: 5 }, () => createSessionVia(app, { rowsCount: 2, seatsPerRow: 12 })),
    );
    for (let tries = 0; tries < 50; tries++) {
      const session = await createSessionVia(app, { rowsCount: 2, seatsPerRow: 12 });
      if (await onVictim(session.session.id)) {
        sessions.push(session);
        break;
      }
    }
    victim.disconnect();
    expect(sessions).toHaveLength(6);
    expect((await call(app, "GET", "/health")).body.checks.redis.status).toBe("ok");
    const statuses: number[] = [];
    const winners: string[] = [];
    for (let round = 0; round < 6; round++) {
      const contests = sessions.map(
        ({ seatIds }) => [seatIds[2 * round], seatIds[2 * round + 1]] as string[],
      );
      const requests = contests.flatMap((pair, contest) =>
        Array.from({ length: 8 }, (_, buyer) =>
          hold(app, `r${round}-c${contest}-b${buyer}`, buyer % 2 ? pair : [...pair].reverse()),
        ),
      );
      // Round 2 loses a master while its requests are in flight.
      const answers = await Promise.all([...requests, ...(round === 2 ? [cluster.kill(0)] : [])]);
      const holds = answers.filter((answer) => answer !== undefined) as Awaited<ReturnType<typeof hold>>[];
      statuses.push(...holds.map((answer) => answer.status));
      for (let contest = 0; contest < contests.length; contest++) {
        const mine = holds.slice(contest * 8, contest * 8 + 8);
        // Exactly one buyer per contested pair, whichever lock stood in front of the database.
        expect(mine.filter((answer) => answer.status === 201)).toHaveLength(1);
        for (const answer of mine) {
          if (answer.status === 201) winners.push(answer.body.id);
          else expect(answer.body.code).toBe("SEAT_UNAVAILABLE");
        }
      }
    }
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    expect(events).toContain("fallback:true");
    expect(events).toContain("redis:error");

    const health = await call(app, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.checks.redis.status).toBe("degraded");

    // The rows: one reservation per winner, no seat in two live claims, nothing else amiss.
    const report = await reconcile(suite.database.db);
    expect(report.checks.find((check) => check.name === "double_claims")?.count).toBe(0);
    expect(report.ok).toBe(true);
    const listed = await Promise.all(
      winners.map((id) => call(app, "GET", `/reservations/${id}`).then((answer) => answer.status)),
    );
    expect(listed.every((status) => status === 200)).toBe(true);

    // The master comes back with its slots: after the cool-down a probe finds the cluster whole.
    await cluster.restart(0);
    await waitFor(
      async () => (await call(app, "GET", "/health")).body.checks.redis.status === "ok",
      20_000,
      "redis ok in /health after the master's return",
    );
    expect(events.at(-1)).toBe("fallback:false");
    for (const { seatIds } of sessions) {
      expect((await hold(app, "after-restart", [seatIds[20] as string])).status).toBe(201);
      expect(events.at(-1)).toBe("redis:acquired");
    }
  });
});

withCluster("npm start with REDIS_CLUSTER_NODES", () => {
  const suite = useTestApp("postgres");
  let cluster: RedisClusterUnderTest;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, CLUSTER_START_MS);
  afterAll(async () => {
    await server?.stop();
    await cluster?.close();
  });

  it("takes seat locks on the cluster and says so at start and in /health", async () => {
    server = await startServerProcess({
      DATABASE_URL: suite.database.url as string,
      REDIS_CLUSTER_NODES: cluster.seeds,
      LOG_LEVEL: "info",
    });
    await waitFor(async () => server?.output().includes("Redis Cluster at") ?? false, 10_000, "start line");
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health.checks.redis.status).toBe("ok");

    const created = await fetch(`${server.url}/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        movieId: "m",
        room: "r",
        startsAt: "2027-01-01T20:00:00Z",
        price: 10,
        rowsCount: 1,
        seatsPerRow: 4,
      }),
    });
    const session = (await created.json()) as { id: string; seats: { id: string }[] };
    const seatId = session.seats[0]?.id as string;
    const held = await fetch(`${server.url}/reservations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: "u1", seatIds: [seatId] }),
    });
    expect(held.status).toBe(201);

    // The lock is in the cluster, under the session's hash tag.
    const masters = cluster.nodes.map((node) => new Redis(node));
    try {
      const keys = (await Promise.all(masters.map((master) => master.keys(`*{${session.id}}*`)))).flat();
      expect(keys).toEqual([expect.stringContaining(seatId)]);
    } finally {
      for (const master of masters) master.disconnect();
    }
  });
});
