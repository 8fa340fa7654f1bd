import { mkdirSync } from "node:fs";
import { serve } from "@hono/node-server";
import { createApp } from "../app.ts";
import { createRefusalMemo } from "../booking/refusals.ts";
import type { Database } from "../db/database.ts";
import { migrateEmbedded, migratePostgres } from "../db/migrate-node.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { type Config, ConfigError, parseEnv } from "../env.ts";
import { startSweeper } from "../expiry/sweeper.ts";
import { createNodeSeatLock } from "../seat-lock/node.ts";
import { memoryCheck } from "./node-health.ts";
import { createNodeLogger, runInRequestScope } from "./node-logger.ts";
import { nodeSeatHints } from "./node-seat-hints.ts";
import { createPromMetrics } from "./prom-metrics.ts";

async function openDatabase(
  config: Config,
): Promise<{ db: Database; close: () => Promise<void>; kind: string }> {
  if (config.databaseUrl) {
    await migratePostgres(config.databaseUrl);
    return { ...createNodePostgresDatabase(config.databaseUrl, config.databasePoolSize), kind: "postgres" };
  }
  mkdirSync(config.dataDir, { recursive: true });
  // Imported only when used, like every optional adapter here: each costs megabytes of memory.
  const { createPgliteDatabase } = await import("../db/pglite.ts");
  const embedded = await createPgliteDatabase(config.dataDir);
  await migrateEmbedded(embedded.db);
  return { ...embedded, kind: `embedded PGlite in ${config.dataDir}` };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = parseEnv(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
  const logger = createNodeLogger(config.logLevel);
  const database = await openDatabase(config);
  const metrics = createPromMetrics({ db: database.db });
  const seatHints = await nodeSeatHints(config.databaseUrl, database, logger);
  // Events wait in the outbox either way; without AMQP_URL a sidecar may relay them.
  const relay = config.amqpUrl
    ? (await import("../events/relay-node.ts")).startNodeRelay({
        db: database.db,
        amqpUrl: config.amqpUrl,
        databaseUrl: config.databaseUrl,
        logger,
      })
    : undefined;
  const seatLocks = await createNodeSeatLock(config, { telemetry: metrics.telemetry, logger });
  const app = createApp({
    db: database.db,
    reservationTtlSeconds: config.reservationTtlSeconds,
    logger,
    healthChecks: [
      memoryCheck(),
      ...(relay?.healthChecks ?? []),
      ...(seatLocks.healthCheck ? [seatLocks.healthCheck] : []),
    ],
    metrics,
    telemetry: metrics.telemetry,
    runInRequestScope,
    seatChangeHints: seatHints.hints,
    seatLock: seatLocks.seatLock,
    refusals: createRefusalMemo({ windowMs: config.seatRefusalCacheMs }),
    holdExpiry: config.qstash
      ? (await import("../expiry/qstash.ts")).qstashHoldExpiry(config.qstash, {
          onError: (error, action) =>
            logger.warn({ err: error, action }, "QStash expiry callback call failed"),
        })
      : undefined,
  });
  const sweeper = startSweeper({
    db: database.db,
    intervalMs: config.expirySweepIntervalMs,
    telemetry: metrics.telemetry,
    seatLock: seatLocks.seatLock,
    onError: (error) => logger.warn({ err: error }, "expiry sweep failed; retrying next interval"),
    onSwept: (expired) => {
      if (expired > 0) logger.info({ expired }, "expired overdue holds");
    },
  });
  const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
    logger.info(
      { port: info.port, database: database.kind, seatLocks: seatLocks.description },
      `listening on http://localhost:${info.port}`,
    );
  });

  const shutdown = async (signal: string) => {
    logger.info({ signal }, "shutting down");
    server.close();
    await sweeper.stop();
    await seatHints.stop();
    await relay?.stop();
    await seatLocks.close();
    await database.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

await main();
