import { type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRefusalMemo } from "../src/booking/refusals.ts";
import { noTelemetry, type Telemetry } from "../src/booking/telemetry.ts";
import type { Database } from "../src/db/database.ts";
import { queryRows } from "../src/db/database.ts";
import { advisorySeatLock } from "../src/seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../src/seat-lock/failover.ts";
import type { SeatLock } from "../src/seat-lock/seat-lock.ts";
import { call, createSessionVia, createTestApp, hold } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import {
  availableLocks,
  describeEachLock,
  type LockName,
  type LockUnderTest,
  openLock,
} from "./support/seat-locks.ts";

const BUYERS = 1_000;

/**
 * Counts what the booking code asks of the database: transactions and the holds sent in claim
 * statements (the two ways a write happens), and every statement sent outside a transaction.
 */
function countingDatabase(db: Database) {
  const counts = { transactions: 0, claims: 0, claimStatements: 0, statements: 0 };
  const dialect = new PgDialect();
  const counted = new Proxy(db, {
    get(target, property, receiver) {
      if (property === "transaction") counts.transactions++;
      if (property === "execute") {
        counts.statements++;
        return (query: SQL) => {
          // One claim statement carries a batch of holds (a JSON array): each is a claim attempt.
          const { sql: text, params } = dialect.sqlToQuery(query);
          if (text.includes("claim_holds(")) {
            counts.claimStatements++;
            counts.claims += (JSON.parse(String(params[0])) as unknown[]).length;
          }
          return target.execute(query);
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { db: counted, counts };
}

function countingTelemetry() {
  const locks: Record<string, number> = {};
  const telemetry: Telemetry = {
    ...noTelemetry,
    lockAcquisition: (backend, result) => {
      locks[`${backend}:${result}`] = (locks[`${backend}:${result}`] ?? 0) + 1;
    },
  };
  return { telemetry, locks };
}

/**
 * The lock under test around a suite, with the database its claims go to (advisory locks bring
 * their own). A generous timeout: 1,000 concurrent lock calls take seconds on a loaded machine, and
 * a fallback to advisory locks would change the counts checked here.
 */
function useLock(name: LockName): { subject: LockUnderTest; database: TestDatabase } {
  const suite = {} as { subject: LockUnderTest; database: TestDatabase };
  beforeAll(async () => {
    suite.subject = await openLock(name, 30_000);
    suite.database = suite.subject.database ?? (await openTestDatabase("postgres", 20));
  });
  afterAll(async () => {
    if (!suite.subject.database) await suite.database.close();
    await suite.subject.close();
  });
  return suite;
}

// Advisory locks run too, for contrast: there every loser opens a transaction.
describeEachLock(
  availableLocks(),
  `hot seat: ${BUYERS} concurrent buyers of the same two seats, %s locks`,
  (name) => {
    const suite = useLock(name);

    it("has exactly one winner; the lock turns every loser away", { timeout: 120_000 }, async () => {
      const { db, counts } = countingDatabase(suite.database.db);
      const { telemetry, locks } = countingTelemetry();
      const seatLock: SeatLock | undefined =
        suite.subject.redisLock &&
        createFailoverSeatLock({
          primary: suite.subject.redisLock,
          fallback: advisorySeatLock,
          timeoutMs: 30_000,
          cooldownMs: 60_000,
          telemetry,
        });
      const app = createTestApp(db, { seatLock, telemetry });
      const { session, seatIds } = await createSessionVia(app);
      const [a, b] = seatIds as [string, string];
      const before = { ...counts };

      const responses = await Promise.all(
        Array.from({ length: BUYERS }, (_, i) => hold(app, `buyer-${i}`, i % 2 === 0 ? [a, b] : [b, a])),
      );

      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 201)).toHaveLength(1);
      expect(statuses.filter((status) => status === 409)).toHaveLength(BUYERS - 1);
      expect(responses.filter((r) => r.status === 409).every((r) => r.body.code === "SEAT_UNAVAILABLE")).toBe(
        true,
      );

      const [rows] = await queryRows<{ reservations: number; claims: number }>(
        suite.database.db,
        sql`SELECT (SELECT count(*)::int FROM reservations WHERE session_id = ${session.id}::uuid) AS reservations,
                 (SELECT count(*)::int FROM reservation_seats WHERE session_id = ${session.id}::uuid) AS claims`,
      );
      expect(rows).toEqual({ reservations: 1, claims: 2 });

      const claims = counts.transactions - before.transactions + (counts.claims - before.claims);
      const reads = counts.statements - before.statements - (counts.claimStatements - before.claimStatements);
      console.info(
        `hot seat (${name}): ${BUYERS} buyers, 1 winner; claim attempts ${claims}, reads ${reads}, lock outcomes ${JSON.stringify(locks)}`,
      );
      if (name === "advisory") {
        // Without Redis every buyer gets as far as a transaction (and its try-locks) before being refused.
        expect(claims).toBe(BUYERS);
      } else {
        expect(locks).toEqual({ [`${name}:acquired`]: 1, [`${name}:conflict`]: BUYERS - 1 });
        // The winner's claim is the only one: no loser wrote, or even began a transaction.
        expect(claims).toBe(1);
      }
    });
  },
);

// Each instance remembers the seats it has just found taken: a second wave of buyers of a seat is
// refused from memory, and nobody is refused longer than the window once the seat is free again.
describeEachLock(availableLocks(), "hot seat, refusals remembered for a window: %s locks", (name) => {
  const WINDOW_MS = 3_000;
  const suite = useLock(name);

  function instance(db: Database) {
    const { telemetry, locks } = countingTelemetry();
    const refusals = createRefusalMemo({ windowMs: WINDOW_MS });
    return { app: createTestApp(db, { seatLock: suite.subject.redisLock, telemetry, refusals }), locks };
  }

  it("turns a second wave away without the lock or the database", { timeout: 120_000 }, async () => {
    const { db, counts } = countingDatabase(suite.database.db);
    const { app, locks } = instance(db);
    const { seatIds } = await createSessionVia(app);
    const seats = seatIds.slice(0, 2);

    const first = await Promise.all(Array.from({ length: 100 }, (_, i) => hold(app, `first-${i}`, seats)));
    expect(first.filter((answer) => answer.status === 201)).toHaveLength(1);
    const before = { locks: { ...locks }, counts: { ...counts } };

    const second = await Promise.all(Array.from({ length: 900 }, (_, i) => hold(app, `second-${i}`, seats)));
    expect(second.every((answer) => answer.status === 409 && answer.body.code === "SEAT_UNAVAILABLE")).toBe(
      true,
    );
    expect(locks["memory:conflict"] ?? 0).toBe((before.locks["memory:conflict"] ?? 0) + 900);
    expect({ ...locks, "memory:conflict": 0 }).toEqual({ ...before.locks, "memory:conflict": 0 });
    expect(counts).toEqual(before.counts);
  });

  it("asks the lock once for a crowd arriving at once; the rest wait for its answer", {
    timeout: 120_000,
  }, async () => {
    const { app, locks } = instance(suite.database.db);
    const { seatIds } = await createSessionVia(app);
    const seats = seatIds.slice(0, 2);
    const crowd = await Promise.all(Array.from({ length: 100 }, (_, i) => hold(app, `crowd-${i}`, seats)));
    expect(crowd.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(crowd.filter((answer) => answer.body.code === "SEAT_UNAVAILABLE")).toHaveLength(99);
    if (name === "advisory") {
      // Its locks are taken in the claim's transaction: nothing is held before the claim, so the
      // crowd is turned away there, not from memory.
      expect(locks["memory:conflict"] ?? 0).toBeLessThan(99);
    } else {
      expect(locks).toEqual({ [`${name}:acquired`]: 1, "memory:conflict": 99 });
    }
  });

  it("frees a cancelled hold's seats at once where it was cancelled, elsewhere within the window", {
    timeout: 60_000,
  }, async () => {
    const a = instance(suite.database.db);
    const b = instance(suite.database.db);
    const { seatIds } = await createSessionVia(a.app);
    const seats = seatIds.slice(0, 2);
    const held = await hold(a.app, "holder", seats);
    expect(held.status).toBe(201);
    expect((await hold(a.app, "late-a", seats)).status).toBe(409);
    expect((await hold(b.app, "late-b", seats)).status).toBe(409);
    const refusedOnB = Date.now();

    const cancelled = await call(a.app, "POST", `/reservations/${held.body.id}/cancel`, { userId: "holder" });
    expect(cancelled.status).toBe(200);
    // Where it was cancelled, the next buyer gets the seats.
    const next = await hold(a.app, "next-a", seats);
    expect(next.status).toBe(201);
    expect(
      (await call(a.app, "POST", `/reservations/${next.body.id}/cancel`, { userId: "next-a" })).status,
    ).toBe(200);
    // The other instance still refuses them from memory, but not past its window.
    const stale = await hold(b.app, "stale-b", seats);
    expect(Date.now() - refusedOnB).toBeLessThan(WINDOW_MS);
    expect(stale.status).toBe(409);
    await new Promise((resolve) => setTimeout(resolve, refusedOnB + WINDOW_MS - Date.now() + 10));
    expect((await hold(b.app, "after-window-b", seats)).status).toBe(201);
  });
});
