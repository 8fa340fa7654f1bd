import { Cluster, Redis, type RedisOptions } from "ioredis";
import { withDeadline } from "../deadline.ts";
import type { RedisClusterConfig } from "../env.ts";
import { createRedisSeatLock, type RedisSeatLock } from "./redis-seat-lock.ts";

export type TcpRedisSeatLockOptions = ({ url: string } | { cluster: RedisClusterConfig }) & {
  /** A command without a reply this long fails; the failover then takes over. */
  timeoutMs: number;
  keyPrefix?: string;
};

export type TcpRedisSeatLock = RedisSeatLock & {
  /** Resolves once connected; rejects if Redis does not answer in time (reconnecting goes on). */
  connect(): Promise<void>;
  close(): Promise<void>;
};

const reconnectDelay = (attempt: number) => Math.min(100 * attempt, 2_000);

/**
 * Seat locks over TCP to one Redis or a Redis Cluster (Node only). ioredis queues and re-sends by
 * default; for locks both are wrong: a command written while disconnected must fail at once (the
 * failover answers the buyer), and one in flight when the connection drops must fail, not run
 * again later. A claim's keys share one hash tag (its session), so each script runs on one node;
 * a cluster client follows MOVED and ASK (the command did not run there) but is not let retry a
 * dropped connection or a cluster that is down.
 */
export function createTcpRedisSeatLock(options: TcpRedisSeatLockOptions): TcpRedisSeatLock {
  const connection = {
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    enableAutoPipelining: false,
  } satisfies RedisOptions;
  const client =
    "url" in options
      ? new Redis(options.url, {
          ...connection,
          enableOfflineQueue: false,
          lazyConnect: true,
          retryStrategy: reconnectDelay,
        })
      : new Cluster(options.cluster.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          enableAutoPipelining: false,
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          retryDelayOnTryAgain: 50,
          clusterRetryStrategy: reconnectDelay,
          slotsRefreshTimeout: Math.max(options.timeoutMs, 1_000),
          redisOptions: {
            ...connection,
            username: options.cluster.username,
            password: options.cluster.password,
            tls: options.cluster.tls ? {} : undefined,
          },
        });
  // Connection errors reach callers through the failing commands; without a listener ioredis
  // would print each reconnect attempt as an unhandled error event.
  client.on("error", () => {});
  // Every master owns some sessions' keys: the lock is healthy only while each master it knows
  // answers and sees the cluster ok (a dead master drops out of the client's list, but the
  // others then report the cluster down).
  const ping =
    client instanceof Cluster
      ? async () => {
          const masters = client.nodes("master");
          if (masters.length === 0) throw new Error("no cluster node is connected");
          await Promise.all(
            masters.map(async (node) => {
              const info = String(await node.cluster("INFO"));
              if (!info.includes("cluster_state:ok")) {
                throw new Error(`cluster state not ok at ${node.options.host}:${node.options.port}`);
              }
            }),
          );
        }
      : async () => {
          await client.ping();
        };
  const lock = createRedisSeatLock(
    {
      evalsha: (sha1, keys, args) => client.evalsha(sha1, keys.length, ...keys, ...args),
      eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
      ping,
    },
    "redis",
    options.keyPrefix,
  );
  return {
    ...lock,
    async connect() {
      // A cluster client connects to each master on first use and, without an offline queue,
      // refuses commands meanwhile: open every master's connection now, not under the first crowd.
      const connected = client instanceof Cluster ? client.connect().then(ping) : client.connect();
      await withDeadline(connected, options.timeoutMs * 4, "no connection");
    },
    async close() {
      client.disconnect(false);
    },
  };
}
