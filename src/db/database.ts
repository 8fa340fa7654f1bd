import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
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
