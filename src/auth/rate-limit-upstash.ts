import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import {
  createMemoryRateLimiter,
  decide,
  type RateLimiter,
  type RateRules,
  type RouteClass,
} from "./rate-limit.ts";
import type { SharedRateLimiterOptions } from "./rate-limit-shared.ts";

/**
 * Rate limits counted in Upstash Redis over REST, on every runtime: @upstash/ratelimit's fixed
 * window, one instance per route class. Callers already refused in this window are refused from
 * its ephemeral cache without a request. When Upstash does not answer within `timeoutMs` the
 * library lets the request through; when it fails, this instance counts in memory (said once
 * through `onFallback`).
 */
export function createUpstashRateLimiter(
  credentials: { url: string; token: string },
  rules: RateRules,
  options: SharedRateLimiterOptions & { timeoutMs: number },
): RateLimiter {
  const redis = new Redis({
    url: credentials.url,
    token: credentials.token,
    retry: { retries: 0 },
    enableTelemetry: false,
  });
  const limiters = new Map<RouteClass, Ratelimit>();
  for (const [routeClass, rule] of Object.entries(rules) as [RouteClass, RateRules[RouteClass]][]) {
    if (!rule) continue;
    limiters.set(
      routeClass,
      new Ratelimit({
        redis,
        limiter: Ratelimit.fixedWindow(rule.limit, `${rule.windowSeconds} s`),
        prefix: `${options.prefix ?? "ratelimit"}:${routeClass}`,
        ephemeralCache: new Map(),
        timeout: options.timeoutMs,
        analytics: false,
      }),
    );
  }
  const memory = createMemoryRateLimiter(rules);
  let failing = false;
  return {
    rules,
    async take(routeClass, key) {
      const rule = rules[routeClass];
      const limiter = limiters.get(routeClass);
      if (!rule || !limiter) return undefined;
      try {
        const result = await limiter.limit(key);
        failing = false;
        const count = result.success ? rule.limit - result.remaining : rule.limit + 1;
        return decide(count, result.reset - Date.now(), rule);
      } catch (error) {
        if (!failing) options.onFallback?.(error);
        failing = true;
        return memory.take(routeClass, key);
      }
    },
  };
}
