import type { AppDeps } from "../app.ts";
import { type AccessDeps, accessDeps } from "../auth/access-deps.ts";
import { createUpstashRateLimiter } from "../auth/rate-limit-upstash.ts";
import { createRefusalMemo } from "../booking/refusals.ts";
import type { Database } from "../db/database.ts";
import { createNeonDatabase } from "../db/neon-serverless.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { type Config, edgeDatabaseUrl, OPEN_MODE_WARNING } from "../env.ts";
import { qstashHoldExpiry } from "../expiry/qstash.ts";
import type { HealthCheck, Logger } from "../ports.ts";
import { advisorySeatLock } from "../seat-lock/advisory.ts";
import { createFailoverSeatLock } from "../seat-lock/failover.ts";
import type { SeatLock } from "../seat-lock/seat-lock.ts";
import { createUpstashSeatLock } from "../seat-lock/upstash.ts";

/**
 * What Workers, Deno and Bun share: which PostgreSQL driver, which seat lock, which expiry. Only
 * fetch-based clients live longer than a request (seat locks over Upstash REST, QStash); database
 * clients are opened by the entry point, per request on Workers, per process on Deno and Bun.
 */

export type EdgeDatabase = { db: Database; driver: "neon-serverless" | "pg"; close(): Promise<void> };

/** Neon's hosts and a configured WebSocket proxy: neon-serverless; any other PostgreSQL: pg over TCP sockets. */
export function usesNeonServerless(config: Config): boolean {
  const url = edgeDatabaseUrl(config);
  return Boolean(config.neonWebSocketProxy) || new URL(url).hostname.endsWith(".neon.tech");
}

export function openEdgeDatabase(
  config: Config,
  options: { poolSize: number; webSocketConstructor?: unknown },
): EdgeDatabase {
  const url = edgeDatabaseUrl(config);
  if (usesNeonServerless(config)) {
    const neon = createNeonDatabase(url, {
      poolSize: options.poolSize,
      webSocketProxy: config.neonWebSocketProxy,
      webSocketConstructor: options.webSocketConstructor,
    });
    return { ...neon, driver: "neon-serverless" };
  }
  const { db, close } = createNodePostgresDatabase(url, options.poolSize);
  return { db, close, driver: "pg" };
}

export type EdgeServices = Pick<
  AppDeps,
  "reservationTtlSeconds" | "holdMaxSeconds" | "seatLock" | "refusals" | "holdExpiry" | "logger"
> &
  AccessDeps & {
    healthChecks: HealthCheck[];
    /** One line for the start-up log: what carries locks and expiry here. */
    description: { seatLocks: string; expiry: string };
  };

/**
 * `connectionAddress`: the caller's address as the runtime knows it (Workers: Cloudflare's
 * `CF-Connecting-IP`; Deno and Bun: the socket's peer), for rate limits of callers without a token.
 */
export function createEdgeServices(
  config: Config,
  logger: Logger,
  connectionAddress?: (request: Request, env: unknown) => string | undefined,
): EdgeServices {
  let seatLock: SeatLock | undefined;
  const healthChecks: HealthCheck[] = [];
  if (config.upstash) {
    const failover = createFailoverSeatLock({
      primary: createUpstashSeatLock({ ...config.upstash, timeoutMs: config.seatLock.timeoutMs }),
      fallback: advisorySeatLock,
      ...config.seatLock,
      telemetry: {
        lockAcquisition: () => {},
        lockFallback: (active, reason) =>
          logger.warn(
            { reason },
            active ? "seat locks fell back to PostgreSQL advisory locks" : "seat locks are back on Redis",
          ),
      },
    });
    seatLock = failover;
    healthChecks.push({ name: "redis", required: false, check: () => failover.check() });
  }
  const holdExpiry = config.qstash
    ? qstashHoldExpiry(config.qstash, {
        onError: (error, action) => logger.warn({ err: error, action }, "QStash expiry callback call failed"),
      })
    : undefined;
  if (!config.auth) logger.warn({}, OPEN_MODE_WARNING);
  return {
    ...accessDeps(config, {
      connectionAddress,
      // Shared through Upstash when configured; each isolate or process counts alone otherwise.
      sharedLimiter: config.upstash
        ? (rules) =>
            createUpstashRateLimiter(config.upstash as { url: string; token: string }, rules, {
              timeoutMs: config.seatLock.timeoutMs,
              onFallback: (error) =>
                logger.warn(
                  { err: String(error) },
                  "rate limits: Upstash failed; counting in this instance's memory",
                ),
            })
        : undefined,
    }),
    logger,
    reservationTtlSeconds: config.reservationTtlSeconds,
    holdMaxSeconds: config.holdMaxSeconds,
    seatLock,
    refusals: createRefusalMemo({ windowMs: config.seatRefusalCacheMs }),
    holdExpiry,
    healthChecks,
    description: {
      seatLocks: config.upstash ? "Upstash REST, advisory locks while it fails" : "PostgreSQL advisory locks",
      expiry: config.qstash ? "QStash callbacks and the sweeper" : "the sweeper",
    },
  };
}

/** The app's dependencies for one database: everything else comes from the long-lived services. */
export function edgeDeps(services: EdgeServices, db: Database): AppDeps {
  const { description: _description, ...deps } = services;
  return { ...deps, db };
}
