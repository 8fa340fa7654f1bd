import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import { claimStatement } from "../src/booking/claim-statements.ts";
import { closedLoop } from "./load.ts";

/**
 * Diagnostic, not a ceiling: the statement the service sends for a hold's claim (the same SQL text,
 * built by the same function), sent straight through the pg driver with the same concurrency and
 * pool size: no HTTP, no Redis, no framework, and no batching: one hold per call.
 */
export async function databaseCeiling(options: {
  databaseUrl: string;
  poolSize: number;
  concurrency: number;
  pairs: [string, string][];
  ttlSeconds: number;
}): Promise<{ claims: number; seconds: number; latencies: number[] }> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  const dialect = new PgDialect();
  const latencies: number[] = [];
  let claims = 0;
  try {
    const { seconds } = await closedLoop(options.concurrency, options.pairs, async (pair, index) => {
      const started = performance.now();
      const query = dialect.sqlToQuery(
        claimStatement({
          reservationId: crypto.randomUUID(),
          userId: `ceiling-${index}`,
          seatIds: [...pair].sort(),
          ttlSeconds: options.ttlSeconds,
        }),
      );
      const { rows } = await pool.query<{ outcome: { reservation?: unknown } }>(query.sql, query.params);
      if (rows[0]?.outcome.reservation) claims++;
      latencies.push(performance.now() - started);
    });
    return { claims, seconds, latencies };
  } finally {
    await pool.end();
  }
}
