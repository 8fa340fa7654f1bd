import { describeMigrations, migratePostgres } from "../db/migrate-node.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { type Config, parseEnv, sidecarUrls } from "../env.ts";
import { startNodeRelay } from "../events/relay-node.ts";
import { createNodeLogger } from "./node-logger.ts";
import { exitOnSignals } from "./shutdown.ts";
import { databaseName, describeDatabaseFailure, exitOnStartupFailure } from "./startup.ts";

/**
 * `npm run sidecar`: the outbox relay as a process of its own, for deployments where the API runs
 * on the edge (Workers, Deno Deploy) and cannot speak AMQP. It reads the same outbox table the API
 * writes and publishes to RabbitMQ; run one or several, they share the work safely.
 */
async function main(): Promise<void> {
  let config: Config;
  let urls: { databaseUrl: string; amqpUrl: string };
  try {
    config = parseEnv(process.env);
    urls = sidecarUrls(config);
  } catch (error) {
    exitOnStartupFailure(error, createNodeLogger("info"));
  }
  const logger = createNodeLogger(config.logLevel);
  // Edge runtimes cannot run drizzle's migrator; the sidecar can, under the same lock as the API.
  // It also proves the database answers before the relay starts polling it.
  const migrations = await migratePostgres(urls.databaseUrl).catch((error) =>
    exitOnStartupFailure(describeDatabaseFailure(error, urls.databaseUrl), logger),
  );
  const database = createNodePostgresDatabase(urls.databaseUrl, 3);
  const relay = startNodeRelay({
    db: database.db,
    amqpUrl: urls.amqpUrl,
    databaseUrl: urls.databaseUrl,
    logger,
    connectionName: "outbox-sidecar",
  });
  logger.info(
    {
      database: `PostgreSQL at ${databaseName(urls.databaseUrl)}`,
      migrations: describeMigrations(migrations),
      broker: new URL(urls.amqpUrl).host,
    },
    `outbox sidecar relaying events from ${databaseName(urls.databaseUrl)} to RabbitMQ at ${new URL(urls.amqpUrl).host}`,
  );

  // Bounded step by step and as a whole: a stalled broker or database cannot hold the exit.
  exitOnSignals(
    () => [
      { name: "outbox relay", run: () => relay.stop() },
      { name: "database", run: () => database.close() },
    ],
    { deadlineMs: config.shutdownTimeoutMs, logger },
  );
}

await main();
