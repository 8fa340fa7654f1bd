import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import { claimHoldsStatement } from "../src/booking/claim-statements.ts";
import { closedLoop } from "./load.ts";

/**
 * Diagnostic, not a ceiling: the statement the service sends for a batch of claims (the same SQL
 * text, built by the same function), here with one hold per statement, sent straight through the pg driver with the same concurrency and
 * pool size: no HTTP, no Redis, no framework, and no batching: one hold per call.
 */
export async function databaseCeiling(options: {
  databaseUrl: string;
  poolSize: number;
  concurrency: number;
  pairs: { sessionId: string; seatIds: [string, string] }[];
  ttlSeconds: number;
}): Promise<{ claims: number; seconds: number; latencies: number[] }> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  const dialect = new PgDialect();
  const latencies: number[] = [];
  let claims = 0;
  try {
    const { seconds } = await closedLoop(options.concurrency, options.pairs, async (pair, index) => {
      const started = performance.now();
      const reservationId = crypto.randomUUID();
      const userId = `ceiling-${index}`;
      const seatIds = [...pair.seatIds].sort();
      const query = dialect.sqlToQuery(
        claimHoldsStatement([
          {
            reservationId,
            userId,
            sessionId: pair.sessionId,
            seatIds,
            totalCents: 2 * 1250,
            ttlSeconds: options.ttlSeconds,
            transactionLocks: [],
            event: { reservationId, sessionId: pair.sessionId, userId, seatIds, totalPrice: 25 },
          },
        ]),
      );
      const { rows } = await pool.query<{ outcome: string }>(query.sql, query.params);
      if (rows[0]?.outcome === "created") claims++;
      latencies.push(performance.now() - started);
    });
    return { claims, seconds, latencies };
  } finally {
    await pool.end();
  }
}
