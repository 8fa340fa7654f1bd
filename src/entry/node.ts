import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { getRequestListener } from "@hono/node-server";
import { createApp } from "../app.ts";
import { accessDeps } from "../auth/access-deps.ts";
import type { RateLimiter, RateRules } from "../auth/rate-limit.ts";
import { createRefusalMemo } from "../booking/refusals.ts";
import type { Database } from "../db/database.ts";
import {
  describeMigrations,
  type MigrationReport,
  migrateEmbedded,
  migratePostgres,
} from "../db/migrate-node.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { type Config, OPEN_MODE_WARNING, parseEnv } from "../env.ts";
import { startSweeper } from "../expiry/sweeper.ts";
import { createNodeSeatLock } from "../seat-lock/node.ts";
import { answerParserRefusals, answerRefusedRequest, httpServerOptions } from "./http-server.ts";
import { memoryCheck } from "./node-health.ts";
import { createAccessLog, createNodeLogger, runInRequestScope } from "./node-logger.ts";
import { nodeSeatHints } from "./node-seat-hints.ts";
import { createPromMetrics } from "./prom-metrics.ts";
import { closeHttpServer, exitOnSignals } from "./shutdown.ts";
import {
  addressUrl,
  databaseName,
  describeDatabaseFailure,
  exitOnStartupFailure,
  listen,
  StartupError,
} from "./startup.ts";

type OpenDatabase = { db: Database; close: () => Promise<void>; kind: string; migrations: MigrationReport };

async function openDatabase(config: Config): Promise<OpenDatabase> {
  if (config.databaseUrl) {
    const url = config.databaseUrl;
    const migrations = await migratePostgres(url).catch((error) => {
      throw describeDatabaseFailure(error, url);
    });
    const postgres = createNodePostgresDatabase(url, config.databasePoolSize);
    return { ...postgres, kind: `PostgreSQL at ${databaseName(url)}`, migrations };
  }
  try {
    mkdirSync(config.dataDir, { recursive: true });
  } catch (error) {
    throw new StartupError(
      `DATA_DIR: cannot create ${config.dataDir} (${(error as NodeJS.ErrnoException).code}); point DATA_DIR at a writable directory, or set DATABASE_URL`,
    );
  }
  // Imported only when used, like every optional adapter here: each costs megabytes of memory.
  const { createPgliteDatabase } = await import("../db/pglite.ts");
  try {
    const embedded = await createPgliteDatabase(config.dataDir);
    const migrations = await migrateEmbedded(embedded.db);
    return { ...embedded, kind: `embedded PGlite in ${config.dataDir}`, migrations };
  } catch (error) {
    throw new StartupError(
      `DATA_DIR: the embedded database in ${config.dataDir} cannot be opened (${(error as Error).message}); move that directory away to start afresh, or set DATABASE_URL`,
    );
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = parseEnv(process.env);
  } catch (error) {
    // LOG_LEVEL may be the invalid variable: the failure is written at the default level.
    exitOnStartupFailure(error, createNodeLogger("info"));
  }
  const logger = createNodeLogger(config.logLevel);
  try {
    await start(config, logger);
  } catch (error) {
    exitOnStartupFailure(error, logger);
  }
}

/**
 * Binds the port first, then opens the database, then starts background work: a second instance on
 * a taken port, or one whose database is not there, stops before it opens `./.data` or sweeps.
 * Requests that arrive in between wait for the app.
 */
async function start(config: Config, logger: ReturnType<typeof createNodeLogger>): Promise<void> {
  let serveApp: (request: Request, env: unknown) => Response | Promise<Response>;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const server = createServer(
    httpServerOptions(config.http),
    getRequestListener(
      async (request, env) => {
        await ready;
        return serveApp(request, env);
      },
      { errorHandler: answerRefusedRequest },
    ),
  );
  answerParserRefusals(server);
  const address = await listen(server, config.port, config.host);

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
  const rateLimits = await nodeRateLimiter(config, logger);
  const app = createApp({
    db: database.db,
    reservationTtlSeconds: config.reservationTtlSeconds,
    holdMaxSeconds: config.holdMaxSeconds,
    logger,
    ...accessDeps(config, { connectionAddress: nodePeerAddress, sharedLimiter: rateLimits.limiter }),
    healthChecks: [
      memoryCheck(),
      ...(relay?.healthChecks ?? []),
      ...(seatLocks.healthCheck ? [seatLocks.healthCheck] : []),
    ],
    relayInProcess: relay !== undefined,
    metrics,
    telemetry: metrics.telemetry,
    runInRequestScope,
    accessLog: createAccessLog(logger),
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

  const sweeps = `the sweeper every ${config.expirySweepIntervalMs} ms`;
  const url = addressUrl(address);
  logger.info(
    {
      address: url,
      database: database.kind,
      migrations: describeMigrations(database.migrations),
      seatLocks: seatLocks.description,
      expiry: config.qstash
        ? `QStash callbacks to ${config.qstash.publicBaseUrl}, ${sweeps} as a backstop`
        : `${sweeps} (no QStash configured)`,
      events: config.amqpUrl
        ? `relayed to RabbitMQ at ${new URL(config.amqpUrl).host}`
        : "not relayed by this instance (no AMQP_URL)",
    },
    `listening on ${url}`,
  );
  if (!config.auth) logger.warn({}, OPEN_MODE_WARNING);
  if (!config.amqpUrl) {
    logger.warn(
      {},
      "AMQP_URL is not set: events wait in the outbox until a relay publishes them; set AMQP_URL or run the sidecar (npm run sidecar); /health reports the backlog",
    );
  }
  serveApp = app.fetch;
  markReady();

  // Each step is bounded and the whole within SHUTDOWN_TIMEOUT_MS: a dead database or broker
  // cannot keep the process from exiting.
  exitOnSignals(
    () => [
      // Open seat streams end first, so their clients reconnect to another instance at once.
      { name: "seat streams", run: async () => seatHints.closeStreams() },
      closeHttpServer(server),
      { name: "expiry sweeper", run: () => sweeper.stop() },
      { name: "seat change listener", run: () => seatHints.stop() },
      { name: "outbox relay", run: async () => relay?.stop() },
      { name: "seat locks", run: () => seatLocks.close() },
      { name: "rate limits", run: () => rateLimits.close() },
      { name: "database", run: () => database.close() },
    ],
    { deadlineMs: config.shutdownTimeoutMs, logger },
  );
}

/**
 * Rate limits shared with the other instances: on the TCP Redis of REDIS_URL, else on Upstash;
 * neither (or limits off), each instance counts in memory.
 */
async function nodeRateLimiter(
  config: Config,
  logger: ReturnType<typeof createNodeLogger>,
): Promise<{ limiter?: (rules: RateRules) => RateLimiter; close: () => Promise<void> }> {
  const onFallback = (error: unknown) =>
    logger.warn({ err: error }, "rate limits: Redis did not answer; counting in this instance's memory");
  const timeoutMs = config.seatLock.timeoutMs;
  if (config.rateLimits && config.redisUrl) {
    const { createTcpRateLimiter } = await import("../auth/rate-limit-tcp.ts");
    const limiter = createTcpRateLimiter(config.redisUrl, config.rateLimits, { timeoutMs, onFallback });
    return { limiter: () => limiter, close: () => limiter.close() };
  }
  if (config.rateLimits && config.upstash) {
    const upstash = config.upstash;
    const { createUpstashRateLimiter } = await import("../auth/rate-limit-upstash.ts");
    return {
      limiter: (rules) => createUpstashRateLimiter(upstash, rules, { timeoutMs, onFallback }),
      close: async () => {},
    };
  }
  return { close: async () => {} };
}

/** The peer of a request as @hono/node-server hands it over (its `env` is `{ incoming, outgoing }`). */
function nodePeerAddress(_request: Request, env: unknown): string | undefined {
  return (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
}

await main();
