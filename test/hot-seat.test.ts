import { type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noTelemetry, type Telemetry } from "../src/booking/telemetry.ts";
import type { Database } from "../src/db/database.ts";
import { queryRows } from "../src/db/database.ts";
import { advisorySeatLock } from "../src/seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../src/seat-lock/failover.ts";
import type { SeatLock } from "../src/seat-lock/seat-lock.ts";
import { createSessionVia, createTestApp, hold } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import { availableLocks, type LockUnderTest, openLock } from "./support/seat-locks.ts";

const BUYERS = 1_000;

/**
 * Counts what the booking code asks of the database: transactions and single-statement claims
 * (the two ways a write happens), and every statement sent outside a transaction.
 */
function countingDatabase(db: Database) {
  const counts = { transactions: 0, claims: 0, statements: 0 };
  const dialect = new PgDialect();
  const counted = new Proxy(db, {
    get(target, property, receiver) {
      if (property === "transaction") counts.transactions++;
      if (property === "execute") {
        counts.statements++;
        return (query: SQL) => {
          if (dialect.sqlToQuery(query).sql.includes("claim_seats(")) counts.claims++;
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

// Advisory locks run too, for contrast: there every loser opens a transaction.
describe.each(availableLocks())(
  `hot seat: ${BUYERS} concurrent buyers of the same two seats, %s locks`,
  (name) => {
    let subject: LockUnderTest;
    let database: TestDatabase;

    beforeAll(async () => {
      subject = await openLock(name, 10_000);
      database = subject.database ?? (await openTestDatabase("postgres", 20));
    });
    afterAll(async () => {
      if (!subject.database) await database.close();
      await subject.close();
    });

    it("has exactly one winner; the lock turns every loser away", { timeout: 120_000 }, async () => {
      const { db, counts } = countingDatabase(database.db);
      const { telemetry, locks } = countingTelemetry();
      const seatLock: SeatLock | undefined =
        subject.redisLock &&
        createFailoverSeatLock({
          primary: subject.redisLock,
          fallback: advisorySeatLock,
          timeoutMs: 10_000,
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
        database.db,
        sql`SELECT (SELECT count(*)::int FROM reservations WHERE session_id = ${session.id}::uuid) AS reservations,
                 (SELECT count(*)::int FROM reservation_seats WHERE session_id = ${session.id}::uuid) AS claims`,
      );
      expect(rows).toEqual({ reservations: 1, claims: 2 });

      const claims = counts.transactions - before.transactions + (counts.claims - before.claims);
      const reads = counts.statements - before.statements - (counts.claims - before.claims);
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
