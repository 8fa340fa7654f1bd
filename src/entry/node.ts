import { mkdirSync } from "node:fs";
import { serve } from "@hono/node-server";
import pino from "pino";
import { createApp } from "../app.ts";
import type { Database } from "../db/database.ts";
import { migrateEmbedded, migratePostgres } from "../db/migrate-node.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { createPgliteDatabase } from "../db/pglite.ts";
import { type Config, ConfigError, parseEnv } from "../env.ts";
import { startSweeper } from "../expiry/sweeper.ts";

async function openDatabase(
  config: Config,
): Promise<{ db: Database; close: () => Promise<void>; kind: string }> {
  if (config.databaseUrl) {
    await migratePostgres(config.databaseUrl);
    return { ...createNodePostgresDatabase(config.databaseUrl, config.databasePoolSize), kind: "postgres" };
  }
  mkdirSync(config.dataDir, { recursive: true });
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
  const logger = pino({ level: config.logLevel, redact: ["*.password", "*.token", "*.authorization"] });
  const database = await openDatabase(config);
  const memory = {
    name: "memory",
    required: false,
    check: async () => {
      const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
      return rssMb < 1024 ? ("ok" as const) : { degraded: `rss ${rssMb} MB` };
    },
  };
  const app = createApp({
    db: database.db,
    reservationTtlSeconds: config.reservationTtlSeconds,
    logger,
    healthChecks: [memory],
  });
  const sweeper = startSweeper({
    db: database.db,
    intervalMs: config.expirySweepIntervalMs,
    onError: (error) => logger.warn({ err: error }, "expiry sweep failed; retrying next interval"),
    onSwept: (expired) => {
      if (expired > 0) logger.info({ expired }, "expired overdue holds");
    },
  });
  const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
    logger.info({ port: info.port, database: database.kind }, `listening on http://localhost:${info.port}`);
  });

  const shutdown = async (signal: string) => {
    logger.info({ signal }, "shutting down");
    server.close();
    await sweeper.stop();
    await database.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

await main();
