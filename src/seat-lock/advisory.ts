import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { transactionSeatLock } from "./seat-lock.ts";

/**
 * PostgreSQL advisory locks: `pg_try_advisory_xact_lock` on each seat, in ascending seat order,
 * inside the claim transaction; the locks end with it. A try-lock never waits, so two buyers of
 * the same seats in opposite orders cannot deadlock: the second is turned away at once. The walk
 * stops at the first seat it cannot take: a loser that went on would hold the later seats until
 * its rollback, and could turn away the one buyer who holds the first, so that nobody wins. Needs
 * no other service. The lease only names the seats (`transactionLocks`); the claim statement
 * takes them (`try_lock_seats` in drizzle/0008, once per hold of a batch).
 */
export const advisorySeatLock = transactionSeatLock;

/**
 * Takes a lease's try-locks in `tx` with the same database function the claim uses; answers the
 * seat held by someone else, if any. For callers that drive a lease by hand (the contract suite).
 */
export async function tryLockSeats(tx: Executor, seatIds: readonly string[]): Promise<string[]> {
  if (seatIds.length === 0) return [];
  const [row] = await queryRows<{ lost: string[] }>(
    tx,
    sql`SELECT try_lock_seats(${uuidArray(seatIds)}) AS lost`,
  );
  return row?.lost ?? [];
}
