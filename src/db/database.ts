import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { ROLLED_BACK, sqlState } from "./errors.ts";
import type * as schema from "./schema.ts";

/** The one database type that node-postgres, neon-serverless and PGlite drizzle instances satisfy. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A database or a transaction on it: both run queries the same way. */
export type Executor = Database;

/**
 * Runs raw SQL and returns its rows. Every driver we support answers `execute` with an object
 * carrying `rows`; only the surrounding shape differs.
 */
export async function queryRows<T>(db: Executor, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

const TRANSACTION_ATTEMPTS = 3;

/**
 * Runs `work` in a transaction, again (up to three times in all) when PostgreSQL rolled it back on
 * a deadlock or a serialization failure. `work` must start from nothing it set in an earlier try.
 */
export async function transactionRetried<T>(
  db: Database,
  work: (tx: Parameters<Parameters<Database["transaction"]>[0]>[0]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(work);
    } catch (error) {
      if (attempt >= TRANSACTION_ATTEMPTS || !ROLLED_BACK.has(sqlState(error) ?? "")) throw error;
    }
  }
}
