import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { Database } from "./database.ts";
import * as schema from "./schema.ts";

/** PostgreSQL over TCP with a connection pool (Node, and Workers with nodejs_compat sockets). */
export function createNodePostgresDatabase(
  url: string,
  poolSize: number,
): { db: Database; pool: pg.Pool; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 30_000 });
  // An idle client that loses its connection emits 'error'; without a listener Node would crash.
  pool.on("error", () => {});
  const db = drizzle({ client: pool, schema }) as unknown as Database;
  return { db, pool, close: () => pool.end() };
}
