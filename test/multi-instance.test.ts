import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { hasRedisServer, type RedisServer, startRedisServer } from "./support/redis-server.ts";
import { type ServerProcess as Instance, startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

/**
 * Three API server processes on one PostgreSQL and one redis-server of the test's own: hundreds
 * of buyers over overlapping seat sets, spread over the three, then every hold paid. Judged on the
 * rows, not the status codes alone; then again with the redis-server killed halfway.
 */

const BUYERS = 330;
const PRICE_CENTS = 1_000;
const adminUrl = serviceUrl("TEST_DATABASE_URL");

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Answer = { status: number; body: any };
type Buyer = { userId: string; seatIds: string[] };

async function send(instance: Instance, method: string, path: string, body?: unknown): Promise<Answer> {
  try {
    const response = await fetch(`${instance.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  } catch (error) {
    // No answer at all counts against the instance, like a 5xx.
    return { status: 0, body: { error: String(error) } };
  }
}

/** A small seeded generator, so a failing run can be replayed. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Buyers of 1-4 adjacent seats each, starting anywhere: their sets overlap heavily. */
function overlappingBuyers(seatIds: string[], count: number, seed: number): Buyer[] {
  const random = randomSource(seed);
  return Array.from({ length: count }, (_, index) => {
    const size = 1 + Math.floor(random() * 4);
    const start = Math.floor(random() * (seatIds.length - size + 1));
    const seats = seatIds.slice(start, start + size);
    return { userId: `buyer-${seed}-${index}`, seatIds: index % 2 === 0 ? seats : seats.reverse() };
  });
}

describe.skipIf(!adminUrl || !hasRedisServer())("three instances on one PostgreSQL and one Redis", () => {
  let databaseUrl: string;
  let redis: RedisServer;
  let instances: Instance[] = [];
  let pool: pg.Pool;

  beforeAll(async () => {
    databaseUrl = await createScratchDatabase(adminUrl as string);
    await migratePostgres(databaseUrl);
    redis = await startRedisServer();
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      DATABASE_POOL_SIZE: "8",
      RESERVATION_TTL_SECONDS: "300",
      // Generous for a loaded 2-core machine; the failover's own suite covers short timeouts.
      SEAT_LOCK_TIMEOUT_MS: "1000",
      SEAT_LOCK_COOLDOWN_MS: "2000",
    };
    instances = await Promise.all([0, 1, 2].map(() => startServerProcess(env, 90_000)));
    pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await pool?.end();
    await redis?.kill();
    if (databaseUrl) await dropScratchDatabase(adminUrl as string, databaseUrl);
  }, 60_000);

  async function createSession(): Promise<{ id: string; seatIds: string[] }> {
    const created = await send(instances[0] as Instance, "POST", "/sessions", {
      movieId: "multi-instance",
      room: "Room 3",
      startsAt: "2027-03-01T20:00:00Z",
      price: PRICE_CENTS / 100,
      rowsCount: 10,
      seatsPerRow: 10,
    });
    expect(created.status).toBe(201);
    return { id: created.body.id, seatIds: created.body.seats.map((seat: { id: string }) => seat.id) };
  }

  const instanceFor = (index: number) => instances[index % instances.length] as Instance;

  /** Holds for every buyer (buyer i on instance i mod 3), `midway` running once half the first half answered. */
  async function holdAll(buyers: Buyer[], midway?: () => Promise<void>): Promise<Answer[]> {
    const fire = (buyer: Buyer, index: number) =>
      send(instanceFor(index), "POST", "/reservations", { userId: buyer.userId, seatIds: buyer.seatIds });
    if (!midway) return Promise.all(buyers.map(fire));
    const half = Math.floor(buyers.length / 2);
    let answered = 0;
    let reachedHalfway: () => void = () => {};
    const halfway = new Promise<void>((resolve) => {
      reachedHalfway = resolve;
    });
    const first = buyers.slice(0, half).map((buyer, index) =>
      fire(buyer, index).then((answer) => {
        if (++answered === Math.floor(half / 2)) reachedHalfway();
        return answer;
      }),
    );
    await halfway;
    await midway();
    const second = buyers.slice(half).map((buyer, index) => fire(buyer, half + index));
    return Promise.all([...first, ...second]);
  }

  /** Pays every hold through another instance than the one that made it. */
  async function payAll(buyers: Buyer[], holds: Answer[]): Promise<Answer[]> {
    return Promise.all(
      holds.flatMap((answer, index) =>
        answer.status === 201
          ? [
              send(instanceFor(index + 1), "POST", `/reservations/${answer.body.id}/pay`, {
                userId: buyers[index]?.userId,
              }),
            ]
          : [],
      ),
    );
  }

  async function one<T>(text: string, values: unknown[] = []): Promise<T> {
    const { rows } = await pool.query(text, values);
    return rows[0] as T;
  }

  /** The invariant and the books, read from the rows. */
  async function expectConsistentRows(sessionId: string, holds: Answer[]): Promise<{ sold: number }> {
    const winners = holds.filter((answer) => answer.status === 201).map((answer) => answer.body);
    const heldSeats = winners.flatMap((hold: { seatIds: string[] }) => hold.seatIds);

    const overlapping = await one<{ n: number }>(
      `SELECT count(*)::int AS n FROM reservation_seats a JOIN reservation_seats b
         ON a.seat_id = b.seat_id AND a.reservation_id < b.reservation_id AND a.claim && b.claim`,
    );
    expect(overlapping.n).toBe(0);
    const doubleActive = await one<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT seat_id FROM reservation_seats
         WHERE session_id = $1 AND upper(claim) > now() GROUP BY seat_id HAVING count(*) > 1) twice`,
      [sessionId],
    );
    expect(doubleActive.n).toBe(0);

    const books = await one<{
      confirmed: number;
      other: number;
      sales: number;
      amount: number;
      confirmed_seats: number;
      distinct_seats: number;
    }>(
      `SELECT
         (SELECT count(*)::int FROM reservations WHERE session_id = $1 AND status = 'CONFIRMED') AS confirmed,
         (SELECT count(*)::int FROM reservations WHERE session_id = $1 AND status <> 'CONFIRMED') AS other,
         (SELECT count(*)::int FROM sales WHERE session_id = $1) AS sales,
         (SELECT coalesce(sum(amount_cents), 0)::int FROM sales WHERE session_id = $1) AS amount,
         (SELECT count(*)::int FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
           WHERE r.session_id = $1 AND r.status = 'CONFIRMED') AS confirmed_seats,
         (SELECT count(DISTINCT rs.seat_id)::int FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
           WHERE r.session_id = $1 AND r.status = 'CONFIRMED') AS distinct_seats`,
      [sessionId],
    );
    expect(books).toEqual({
      confirmed: winners.length,
      other: 0,
      sales: winners.length,
      amount: heldSeats.length * PRICE_CENTS,
      confirmed_seats: heldSeats.length,
      distinct_seats: heldSeats.length,
    });
    const soldTo = await pool.query("SELECT reservation_id FROM sales WHERE session_id = $1", [sessionId]);
    expect(soldTo.rows.map((row) => row.reservation_id).sort()).toEqual(
      winners.map((hold) => hold.id).sort(),
    );

    const seatMap = await send(instanceFor(2), "GET", `/sessions/${sessionId}`);
    expect(seatMap.body.counts).toMatchObject({ sold: heldSeats.length, held: 0 });
    return { sold: heldSeats.length };
  }

  function expectOnly(answers: Answer[], allowed: number[]): void {
    const unexpected = answers.filter((answer) => !allowed.includes(answer.status));
    expect(unexpected, JSON.stringify(unexpected.slice(0, 3))).toEqual([]);
  }

  it(`${BUYERS} concurrent buyers over overlapping seats, spread over three instances`, {
    timeout: 180_000,
  }, async () => {
    const session = await createSession();
    const buyers = overlappingBuyers(session.seatIds, BUYERS, 1);
    const scripts = new Redis(redis.url);
    const callsBefore = await lockScriptCalls(scripts);
    const locksBefore = await lockAcquisitions(instances);

    const holds = await holdAll(buyers);
    expectOnly(holds, [201, 409]);
    const winners = holds.filter((answer) => answer.status === 201).length;
    expect(winners).toBeGreaterThan(0);
    expect(holds.filter((answer) => answer.status === 409).length).toBeGreaterThan(0);

    const payments = await payAll(buyers, holds);
    expect(payments.map((answer) => answer.status)).toEqual(payments.map(() => 200));
    const { sold } = await expectConsistentRows(session.id, holds);

    // The locks went through Redis: acquire and release scripts ran there, and every instance says ok.
    // A loser was refused by Redis, or from the memory of seats Redis had just refused on its instance.
    const scriptCalls = (await lockScriptCalls(scripts)) - callsBefore;
    scripts.disconnect();
    const locks = difference(await lockAcquisitions(instances), locksBefore);
    expect(["memory:conflict", "redis:acquired", "redis:conflict"]).toEqual(
      expect.arrayContaining(Object.keys(locks)),
    );
    expect(locks["redis:acquired"]).toBe(winners);
    expect((locks["redis:conflict"] ?? 0) + (locks["memory:conflict"] ?? 0)).toBe(BUYERS - winners);
    expect(scriptCalls).toBeGreaterThanOrEqual(2 * winners + (locks["redis:conflict"] ?? 0));
    for (const instance of instances) {
      expect((await send(instance, "GET", "/health")).body.checks.redis.status).toBe("ok");
    }
    console.info(
      `multi-instance: ${BUYERS} buyers, ${winners} holds, ${sold} seats sold, ${scriptCalls} lock scripts run in Redis, lock outcomes ${JSON.stringify(locks)}`,
    );
  });

  it("the same with the redis-server killed halfway: no 5xx, no double sale, /health degraded", {
    timeout: 180_000,
  }, async () => {
    const session = await createSession();
    const buyers = overlappingBuyers(session.seatIds, BUYERS, 2);
    const locksBefore = await lockAcquisitions(instances);

    const holds = await holdAll(buyers, () => redis.kill());
    expectOnly(holds, [201, 409]);
    const winners = holds.filter((answer) => answer.status === 201).length;
    expect(winners).toBeGreaterThan(0);

    const payments = await payAll(buyers, holds);
    expect(payments.map((answer) => answer.status)).toEqual(payments.map(() => 200));
    const { sold } = await expectConsistentRows(session.id, holds);

    for (const instance of instances) {
      const health = await send(instance, "GET", "/health");
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("degraded");
      expect(health.body.checks.redis).toMatchObject({
        status: "degraded",
        detail: expect.stringContaining("PostgreSQL advisory locks carry the claims"),
      });
      expect(instance.output()).toContain("seat locks fell back to PostgreSQL advisory locks");
    }
    // Both carried claims in this run: Redis before the kill, advisory locks after it.
    const locks = difference(await lockAcquisitions(instances), locksBefore);
    expect(locks["redis:acquired"] ?? 0).toBeGreaterThan(0);
    expect(locks["redis:error"] ?? 0).toBeGreaterThan(0);
    expect((locks["advisory:acquired"] ?? 0) + (locks["advisory:conflict"] ?? 0)).toBeGreaterThan(0);
    console.info(
      `multi-instance, Redis killed halfway: ${BUYERS} buyers, ${winners} holds, ${sold} seats sold, zero 5xx, lock outcomes ${JSON.stringify(locks)}`,
    );
  });
});

/** `seat_lock_acquisitions_total` of every instance, summed by `backend:result`. */
async function lockAcquisitions(instances: Instance[]): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const instance of instances) {
    const text = await (await fetch(`${instance.url}/metrics`)).text();
    for (const [, backend, result, value] of text.matchAll(
      /^seat_lock_acquisitions_total\{backend="(\w+)",result="(\w+)"\} (\d+)/gm,
    )) {
      totals[`${backend}:${result}`] = (totals[`${backend}:${result}`] ?? 0) + Number(value);
    }
  }
  return totals;
}

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([key, value]) => [key, value - (before[key] ?? 0)] as const)
      .filter(([, value]) => value > 0),
  );
}

/** How many times Redis ran a script (EVALSHA or EVAL) since it started. */
async function lockScriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info("commandstats");
  return [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce(
    (sum, match) => sum + Number(match[1]),
    0,
  );
}
