import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import type { LockAttempt, SeatClaim, SeatLease, SeatLock } from "./seat-lock.ts";

/**
 * Takes `pg_try_advisory_xact_lock` on each seat, in ascending seat order, inside the claim
 * transaction; the locks end with it. A try-lock never waits, so two buyers of the same seats in
 * opposite orders cannot deadlock: the second is turned away at once. The walk stops at the first
 * seat it cannot take (answered as the seat someone else holds): a loser that went on would hold
 * the later seats until its rollback, and could turn away the one buyer who holds the first, so
 * that nobody wins. Needs no other service.
 */
async function lockInTransaction(tx: Executor, seatIds: readonly string[]): Promise<string[]> {
  const rows = await queryRows<{ seat_id: string; locked: boolean }>(
    tx,
    sql`
      WITH RECURSIVE seat AS (
        SELECT id, row_number() OVER (ORDER BY id) AS ordinal FROM unnest(${uuidArray(seatIds)}) AS s(id)
      ), walk AS (
        SELECT id, ordinal, pg_try_advisory_xact_lock(hashtextextended(id::text, 0)) AS locked
        FROM seat WHERE ordinal = 1
        UNION ALL
        SELECT seat.id, seat.ordinal, pg_try_advisory_xact_lock(hashtextextended(seat.id::text, 0))
        FROM walk JOIN seat ON seat.ordinal = walk.ordinal + 1
        WHERE walk.locked
      )
      SELECT id::text AS seat_id, locked FROM walk`,
  );
  return rows.filter((row) => !row.locked).map((row) => row.seat_id);
}

/** The lease of a claim that takes its seats inside the transaction. */
export function advisoryLease(seatIds: readonly string[]): SeatLease {
  return {
    backend: "advisory",
    enter: (tx) => lockInTransaction(tx, seatIds),
    release: async () => {},
  };
}

/** Nothing to take before the transaction, nothing to give back after it. */
export const advisorySeatLock: SeatLock = {
  keyedBySession: false,
  async acquire(claim: SeatClaim): Promise<LockAttempt> {
    return { acquired: true, lease: advisoryLease(claim.seatIds) };
  },
  async release() {},
};
