import { Redis } from "ioredis";
import { withDeadline } from "../deadline.ts";
import { createRedisSeatLock, type RedisSeatLock } from "./redis-seat-lock.ts";

export type TcpRedisSeatLockOptions = {
  url: string;
  /** A command without a reply this long fails; the failover then takes over. */
  timeoutMs: number;
  keyPrefix?: string;
};

export type TcpRedisSeatLock = RedisSeatLock & {
  /** Resolves once connected; rejects if Redis does not answer in time (reconnecting goes on). */
  connect(): Promise<void>;
  close(): Promise<void>;
};

/**
 * Seat locks over a TCP connection to Redis (Node only). ioredis queues and re-sends by default;
 * for locks both are wrong: a command written while disconnected must fail at once (the failover
 * answers the buyer), and one in flight when the connection drops must fail, not run again later.
 */
export function createTcpRedisSeatLock(options: TcpRedisSeatLockOptions): TcpRedisSeatLock {
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    enableAutoPipelining: false,
  });
  // Connection errors reach callers through the failing commands; without a listener ioredis
  // would print each reconnect attempt as an unhandled error event.
  client.on("error", () => {});
  const lock = createRedisSeatLock(
    {
      evalsha: (sha1, keys, args) => client.evalsha(sha1, keys.length, ...keys, ...args),
      eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
      ping: async () => {
        await client.ping();
      },
    },
    "redis",
    options.keyPrefix,
  );
  return {
    ...lock,
    async connect() {
      await withDeadline(client.connect(), options.timeoutMs * 4, "no connection");
    },
    async close() {
      client.disconnect(false);
    },
  };
}
