import {
  counterKey,
  createMemoryRateLimiter,
  decide,
  FIXED_WINDOW_SCRIPT,
  type RateLimiter,
  type RateRules,
} from "./rate-limit.ts";

/** One atomic script call: answers `[count, ms left in the window]`. */
export type CounterScript = (script: string, keys: string[], args: string[]) => Promise<unknown>;

export type SharedRateLimiterOptions = {
  prefix?: string;
  /** Told once each time the shared store fails and this instance counts in memory instead. */
  onFallback?: (error: unknown) => void;
};

/**
 * Counts shared by every instance on one Redis (TCP or Upstash REST): the counter of a caller's
 * window is incremented by one atomic script, one round trip. When Redis fails, the instance
 * counts in its own memory until Redis answers again: limits loosen to per instance, requests are
 * never refused for want of a counter.
 */
export function createSharedRateLimiter(
  run: CounterScript,
  rules: RateRules,
  options: SharedRateLimiterOptions = {},
): RateLimiter {
  const prefix = options.prefix ?? "ratelimit";
  const memory = createMemoryRateLimiter(rules);
  let failing = false;
  return {
    rules,
    async take(routeClass, key) {
      const rule = rules[routeClass];
      if (!rule) return undefined;
      const windowMs = rule.windowSeconds * 1000;
      try {
        const reply = (await run(
          FIXED_WINDOW_SCRIPT,
          [counterKey(prefix, routeClass, key, windowMs)],
          [String(windowMs)],
        )) as [number | string, number | string];
        failing = false;
        return decide(Number(reply[0]), Number(reply[1]), rule);
      } catch (error) {
        if (!failing) options.onFallback?.(error);
        failing = true;
        return memory.take(routeClass, key);
      }
    },
  };
}
