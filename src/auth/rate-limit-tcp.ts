import { Redis } from "ioredis";
import type { RateLimiter, RateRules } from "./rate-limit.ts";
import { createSharedRateLimiter, type SharedRateLimiterOptions } from "./rate-limit-shared.ts";

/**
 * Rate limits counted in Redis over TCP (Node only), for REDIS_URL. Its own connection, never
 * queueing or re-sending: a count that cannot be taken now is taken in memory instead.
 */
export function createTcpRateLimiter(
  url: string,
  rules: RateRules,
  options: SharedRateLimiterOptions & { timeoutMs: number },
): RateLimiter & { close(): Promise<void> } {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
  });
  client.on("error", () => {});
  const limiter = createSharedRateLimiter(
    (script, keys, args) => client.eval(script, keys.length, ...keys, ...args),
    rules,
    options,
  );
  return {
    ...limiter,
    async close() {
      client.disconnect();
    },
  };
}
