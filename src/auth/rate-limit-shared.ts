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
  // Callers refused in this window are refused again from here until it ends, with no round trip.
  const blocked = new Map<string, { until: number; limit: number }>();
  let failing = false;
  return {
    rules,
    async take(routeClass, key) {
      const rule = rules[routeClass];
      if (!rule) return undefined;
      const windowMs = rule.windowSeconds * 1000;
      const id = `${routeClass}:${key}`;
      const known = blocked.get(id);
      if (known && known.until > Date.now()) return decide(known.limit + 1, known.until - Date.now(), rule);
      if (known) blocked.delete(id);
      try {
        const reply = (await run(
          FIXED_WINDOW_SCRIPT,
          [counterKey(prefix, routeClass, key, windowMs)],
          [String(windowMs)],
        )) as [number | string, number | string];
        failing = false;
        const decision = decide(Number(reply[0]), Number(reply[1]), rule);
        if (!decision.allowed) {
          if (blocked.size >= 10_000) blocked.delete(blocked.keys().next().value as string);
          blocked.set(id, { until: Date.now() + Number(reply[1]), limit: rule.limit });
        }
        return decision;
      } catch (error) {
        if (!failing) options.onFallback?.(error);
        failing = true;
        return memory.take(routeClass, key);
      }
    },
  };
}
