/**
 * Rate limits per caller (the token's `sub`, else the client address) and per route class. The
 * limiter is a port: in memory for one instance, Redis (TCP) or Upstash (REST) to share the counts
 * between instances. A fixed window per class: cheap, one counter per caller and class.
 */
export type RouteClass = "holds" | "payments" | "sessions" | "reads";

export const ROUTE_CLASSES: readonly RouteClass[] = ["holds", "payments", "sessions", "reads"];

/** `limit` requests per `windowSeconds`; a class without a rule is not limited. */
export type RateRules = Partial<Record<RouteClass, { limit: number; windowSeconds: number }>>;

export type RateDecision = {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window ends and the count starts again. */
  resetSeconds: number;
  windowSeconds: number;
};

export type RateLimiter = {
  rules: RateRules;
  /** Counts one request of `key` in `routeClass`; undefined when the class is not limited. */
  take(routeClass: RouteClass, key: string): Promise<RateDecision | undefined>;
};

/** The decision for a counter at `count` (this request included) whose window ends in `resetMs`. */
export function decide(
  count: number,
  resetMs: number,
  rule: { limit: number; windowSeconds: number },
): RateDecision {
  return {
    allowed: count <= rule.limit,
    limit: rule.limit,
    remaining: Math.max(0, rule.limit - count),
    resetSeconds: Math.max(1, Math.ceil(resetMs / 1000)),
    windowSeconds: rule.windowSeconds,
  };
}

/** Counts in this instance's memory: right for one instance; windows are aligned to the clock. */
export function createMemoryRateLimiter(rules: RateRules, options: { maxKeys?: number } = {}): RateLimiter {
  const maxKeys = options.maxKeys ?? 100_000;
  const counters = new Map<string, { window: number; count: number }>();
  return {
    rules,
    async take(routeClass, key) {
      const rule = rules[routeClass];
      if (!rule) return undefined;
      const windowMs = rule.windowSeconds * 1000;
      const now = Date.now();
      const window = Math.floor(now / windowMs);
      const id = `${routeClass}:${key}`;
      let counter = counters.get(id);
      if (!counter || counter.window !== window) {
        counters.delete(id);
        if (counters.size >= maxKeys) counters.delete(counters.keys().next().value as string);
        counter = { window, count: 0 };
        counters.set(id, counter);
      }
      counter.count += 1;
      return decide(counter.count, (window + 1) * windowMs - now, rule);
    },
  };
}

/**
 * The shared counter's script (Redis EVAL): one atomic round trip increments the caller's counter
 * of the current window and answers the count and the time left. KEYS[1] counter, ARGV[1] window ms.
 */
export const FIXED_WINDOW_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
`;

/** The counter key of a caller in a class and window; one hash tag per caller for Redis Cluster. */
export function counterKey(prefix: string, routeClass: RouteClass, key: string, windowMs: number): string {
  return `${prefix}:{${key}}:${routeClass}:${Math.floor(Date.now() / windowMs)}`;
}
