import { neonConfig, Pool, type PoolClient } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import type { Database } from "./database.ts";
import * as schema from "./schema.ts";

export type NeonOptions = {
  poolSize: number;
  /**
   * `ws://` or `wss://` URL of a WebSocket-to-TCP proxy in front of a plain PostgreSQL (Neon's
   * wsproxy, or the test stand-in). Unset: Neon's own proxy at the database host, over wss.
   */
  webSocketProxy?: string;
  /** Only where the runtime has no global WebSocket (Node 20): the `ws` package's constructor. */
  webSocketConstructor?: unknown;
};

/**
 * PostgreSQL through @neondatabase/serverless: the pg protocol over a WebSocket, with a `Pool`, so
 * interactive transactions work (neon-http has none). The driver's settings are process-wide
 * (`neonConfig`); one process talks to one database, so they are set here, before the pool.
 */
export function createNeonDatabase(
  url: string,
  options: NeonOptions,
): { db: Database; close: () => Promise<void> } {
  if (options.webSocketProxy) {
    const proxy = new URL(options.webSocketProxy);
    const address = `${proxy.host}${proxy.pathname.replace(/\/+$/, "")}`;
    neonConfig.useSecureWebSocket = proxy.protocol === "wss:";
    neonConfig.wsProxy = (host, port) => `${address}?address=${host}:${port}`;
    // Neon's proxy takes the password pipelined with the start-up message; plain PostgreSQL does not.
    neonConfig.pipelineConnect = false;
  }
  if (options.webSocketConstructor) {
    neonConfig.webSocketConstructor = options.webSocketConstructor as typeof neonConfig.webSocketConstructor;
  }
  const pool = new Pool({ connectionString: url, max: options.poolSize });
  // A client that loses its socket emits 'error', and a long-lived process (Deno, Bun) exits on
  // an 'error' nobody listens to. The pool listens only while a client is idle; a checked-out one
  // (a transaction in progress) gets its own listener for life. Its pending query rejects instead.
  pool.on("error", () => {});
  pool.on("connect", (client: PoolClient) => {
    client.on("error", () => {});
  });
  const db = drizzle({ client: pool, schema }) as unknown as Database;
  return { db, close: () => pool.end() };
}
