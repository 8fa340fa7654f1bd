import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { Database } from "./database.ts";
import * as schema from "./schema.ts";

/** Longest wait for a new server connection before the request fails as unavailable (503). */
const CONNECT_TIMEOUT_MS = 5_000;

/** PostgreSQL over TCP with a connection pool (Node, and Workers with nodejs_compat sockets). */
export function createNodePostgresDatabase(
  url: string,
  poolSize: number,
): { db: Database; pool: pg.Pool; close: () => Promise<void> } {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    idleTimeoutMillis: 30_000,
    // A server that accepts no connection (stalled network, full backlog) fails the request, not hangs it.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // A client that loses its connection emits 'error', and Node exits on an 'error' nobody listens
  // to. The pool listens only while a client is idle; a checked-out one (a transaction in progress,
  // the relay's transaction waiting on the broker) gets its own listener here, for life. Its pending
  // query rejects with the same error, and the pool discards the client when it is released.
  pool.on("error", () => {});
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  const db = drizzle({ client: pool, schema }) as unknown as Database;
  return { db, pool, close: () => pool.end() };
}
