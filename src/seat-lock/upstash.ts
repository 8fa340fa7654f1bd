import { Redis } from "@upstash/redis";
import { createRedisSeatLock, type RedisSeatLock } from "./redis-seat-lock.ts";

export type UpstashSeatLockOptions = {
  url: string;
  token: string;
  /** Each request is aborted after this long; the failover then takes over. */
  timeoutMs: number;
  keyPrefix?: string;
};

/**
 * Seat locks over the Upstash REST API, usable on every runtime (it only needs fetch). The client
 * defaults that hurt locks are off: automatic retries would re-send a script whose reply was lost
 * (note that `retry: false` still tries twice in @upstash/redis 1.39; `retries: 0` tries once),
 * and auto-pipelining batches commands and does not keep our order.
 */
export function createUpstashSeatLock(options: UpstashSeatLockOptions): RedisSeatLock {
  const redis = new Redis({
    url: options.url,
    token: options.token,
    retry: { retries: 0 },
    enableAutoPipelining: false,
    automaticDeserialization: false,
    readYourWrites: false,
    enableTelemetry: false,
    // A function, so each request gets a fresh deadline; an aborted request then rejects
    // instead of resolving with the abort reason as its result.
    signal: () => AbortSignal.timeout(options.timeoutMs),
  });
  return createRedisSeatLock(
    {
      evalsha: (sha1, keys, args) => redis.evalsha(sha1, keys, args),
      eval: (source, keys, args) => redis.eval(source, keys, args),
      ping: async () => {
        await redis.ping();
      },
    },
    "upstash",
    options.keyPrefix,
  );
}
