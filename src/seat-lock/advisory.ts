import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import type { LockAttempt, SeatClaim, SeatLease, SeatLock } from "./seat-lock.ts";

/**
 * Takes `pg_try_advisory_xact_lock` on each seat, in ascending seat order, inside the claim
 * transaction; the locks end with it. A try-lock never waits, so two buyers of the same seats in
 * opposite orders cannot deadlock: the second is turned away at once. Needs no other service.
 */
async function lockInTransaction(tx: Executor, seatIds: readonly string[]): Promise<string[]> {
  const rows = await queryRows<{ seat_id: string; locked: boolean }>(
    tx,
    sql`
      SELECT seat_id::text AS seat_id, pg_try_advisory_xact_lock(hashtextextended(seat_id::text, 0)) AS locked
      FROM (SELECT seat_id FROM unnest(${uuidArray(seatIds)}) AS seat(seat_id) ORDER BY seat_id OFFSET 0) AS sorted`,
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
