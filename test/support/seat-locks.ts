import { Cluster, Redis } from "ioredis";
import { describe, it } from "vitest";
import type { Database, Executor } from "../../src/db/database.ts";
import { advisorySeatLock, tryLockSeats } from "../../src/seat-lock/advisory.ts";
import type { RedisSeatLock } from "../../src/seat-lock/redis-seat-lock.ts";
import type { SeatClaim, SeatLock } from "../../src/seat-lock/seat-lock.ts";
import { createTcpRedisSeatLock } from "../../src/seat-lock/tcp-redis.ts";
import { createUpstashSeatLock } from "../../src/seat-lock/upstash.ts";
import { openTestDatabase, type TestDatabase } from "./database.ts";
import { hasRedisCluster, type RedisClusterUnderTest, startRedisCluster } from "./redis-cluster.ts";
import { serviceUrl } from "./services.ts";
import { startUpstashStandIn, type UpstashStandIn } from "./upstash-stand-in.ts";

export type LockName = "upstash" | "redis" | "redis-cluster" | "advisory";

/** One seat-lock implementation with what it runs on, for the shared suites. */
export type LockUnderTest = {
  name: LockName;
  lock: SeatLock;
  /** The same lock, typed as a Redis one (to put behind the failover); absent for advisory locks. */
  redisLock?: RedisSeatLock;
  /** Redis locks outlive the claim transaction (until released or expired); advisory ones end with it. */
  outlivesTransaction: boolean;
  /** Advisory locks live in a transaction of this database. */
  database?: TestDatabase;
  keyPrefix: string;
  standIn?: UpstashStandIn;
  /** The three-master cluster of `redis-cluster`, started for this lock alone. */
  cluster?: RedisClusterUnderTest;
  close(): Promise<void>;
};

/** The implementations whose services are configured: Redis ones need TEST_REDIS_URL, advisory TEST_DATABASE_URL. */
export function availableLocks(): LockName[] {
  const names: LockName[] = [];
  if (serviceUrl("TEST_REDIS_URL")) names.push("upstash", "redis");
  if (serviceUrl("TEST_DATABASE_URL")) names.push("advisory");
  return names;
}

/**
 * The TCP lock on a Redis Cluster the test starts itself (redis-server and redis-cli on PATH).
 * Without them the suite is skipped with one line; under CI=true that is a failure.
 */
export function clusterLocks(): LockName[] {
  if (hasRedisCluster()) return ["redis-cluster"];
  const message =
    "redis-server and redis-cli are not on PATH; install redis-server to run the Redis Cluster suites.";
  if (process.env.CI === "true")
    throw new Error(`${message} Under CI=true a skipped service suite is a failure.`);
  console.warn(`skipped: ${message}`);
  return [];
}

/**
 * `describe.each(names)`, or with no lock available one skipped suite in its place: a file that
 * registers no suite at all fails ("No test suite found").
 */
export function describeEachLock(names: LockName[], title: string, body: (name: LockName) => void): void {
  if (names.length > 0) {
    describe.each(names)(title, body);
    return;
  }
  describe.skip(title.replace("%s", "any"), () => {
    it("needs Redis or PostgreSQL", () => {});
  });
}

export async function openLock(name: LockName, timeoutMs = 2_000): Promise<LockUnderTest> {
  const keyPrefix = `test-seat-lock:${crypto.randomUUID().slice(0, 8)}:`;
  if (name === "advisory") {
    const database = await openTestDatabase("postgres", 40);
    return {
      name,
      lock: advisorySeatLock,
      outlivesTransaction: false,
      database,
      keyPrefix,
      close: database.close,
    };
  }
  if (name === "redis-cluster") {
    const cluster = await startRedisCluster();
    const lock = createTcpRedisSeatLock({
      cluster: { nodes: cluster.nodes, tls: false },
      timeoutMs,
      keyPrefix,
    });
    await lock.connect();
    return {
      name,
      lock,
      redisLock: lock,
      outlivesTransaction: true,
      keyPrefix,
      cluster,
      close: async () => {
        await lock.close();
        await cluster.close();
      },
    };
  }
  const redisUrl = serviceUrl("TEST_REDIS_URL") as string;
  if (name === "redis") {
    const lock = createTcpRedisSeatLock({ url: redisUrl, timeoutMs, keyPrefix });
    await lock.connect();
    return { name, lock, redisLock: lock, outlivesTransaction: true, keyPrefix, close: () => lock.close() };
  }
  const standIn = await startUpstashStandIn({ redisUrl });
  const lock = createUpstashSeatLock({ url: standIn.url, token: standIn.token, timeoutMs, keyPrefix });
  return {
    name,
    lock,
    redisLock: lock,
    outlivesTransaction: true,
    keyPrefix,
    standIn,
    close: () => standIn.close(),
  };
}

/** Redis seat locks never touch the database: any use of this transaction is a test failure. */
const untouchable = new Proxy(
  {},
  {
    get(_, property) {
      throw new Error(`a Redis lease used the transaction (${String(property)})`);
    },
  },
) as Executor;

export type HeldAttempt = {
  acquired: boolean;
  /** The seats named as held by someone else. */
  seatIds: string[];
  /** Ends the attempt as holdSeats does: `commit` keeps a Redis lock, `abort` gives it back. */
  end(outcome: "commit" | "abort"): Promise<void>;
};

/**
 * One claim attempt driven the way holdSeats drives a lock: acquire, then take what the lease
 * asks of the claim transaction (its try-locks, with the claim's own SQL) inside one, kept open
 * until `end` for advisory locks, which live there.
 */
export async function attempt(subject: LockUnderTest, claim: SeatClaim): Promise<HeldAttempt> {
  const result = await subject.lock.acquire(claim);
  if (!result.acquired) return { acquired: false, seatIds: result.seatIds, end: async () => {} };
  const { lease } = result;
  if (!subject.database) {
    // A lease held outside the database asks nothing of the claim's transaction.
    const lost =
      lease.transactionLocks.length > 0 ? await tryLockSeats(untouchable, lease.transactionLocks) : [];
    return {
      acquired: lost.length === 0,
      seatIds: lost,
      end: async (outcome) => {
        if (outcome === "abort") await lease.release();
      },
    };
  }
  return inTransaction(subject.database.db, async (tx) => tryLockSeats(tx, lease.transactionLocks));
}

async function inTransaction(db: Database, enter: (tx: Executor) => Promise<string[]>): Promise<HeldAttempt> {
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let report: (lost: string[]) => void = () => {};
  let failed: (error: unknown) => void = () => {};
  const entered = new Promise<string[]>((resolve, reject) => {
    report = resolve;
    failed = reject;
  });
  const transaction = db
    .transaction(async (tx) => {
      const lost = await enter(tx);
      report(lost);
      if (lost.length === 0) await finished;
    })
    .catch(failed);
  const lost = await entered;
  // A refused claim's transaction ends on its own; its try-locks last until its COMMIT is through,
  // so the next claim must not start before that (else it races the commit and finds them held).
  if (lost.length > 0) await transaction;
  return {
    acquired: lost.length === 0,
    seatIds: lost,
    end: async () => {
      finish();
      await transaction;
    },
  };
}

/** A direct connection to the test Redis, to look at keys the locks wrote. */
export function inspectRedis(): Redis {
  return new Redis(serviceUrl("TEST_REDIS_URL") as string, { lazyConnect: false });
}

/** What a test reads of the Redis behind a lock, whether one server or every master of a cluster. */
export type RedisInspector = {
  keys(pattern: string): Promise<string[]>;
  get(key: string): Promise<string | null>;
  pttl(key: string): Promise<number>;
  /** Makes every server forget the lock scripts (SCRIPT FLUSH). */
  flushScripts(): Promise<void>;
  disconnect(): void;
};

export async function inspectLock(subject: LockUnderTest): Promise<RedisInspector> {
  if (!subject.cluster) {
    const redis = inspectRedis();
    return {
      keys: (pattern) => redis.keys(pattern),
      get: (key) => redis.get(key),
      pttl: (key) => redis.pttl(key),
      flushScripts: async () => {
        await redis.script("FLUSH");
      },
      disconnect: () => redis.disconnect(),
    };
  }
  const masters = subject.cluster.nodes.map((node) => new Redis({ ...node, lazyConnect: false }));
  const cluster = new Cluster(subject.cluster.nodes);
  await cluster.ping();
  return {
    keys: async (pattern) => (await Promise.all(masters.map((redis) => redis.keys(pattern)))).flat(),
    get: (key) => cluster.get(key),
    pttl: (key) => cluster.pttl(key),
    flushScripts: async () => {
      await Promise.all(masters.map((redis) => redis.script("FLUSH")));
    },
    disconnect: () => {
      for (const redis of masters) redis.disconnect();
      cluster.disconnect();
    },
  };
}
