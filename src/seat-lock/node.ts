import type { Config } from "../env.ts";
import type { HealthCheck, Logger } from "../ports.ts";
import { advisorySeatLock } from "./advisory.ts";
import { createFailoverSeatLock, type FailoverTelemetry } from "./failover.ts";
import type { RedisSeatLock } from "./redis-seat-lock.ts";
import type { SeatLock } from "./seat-lock.ts";
import { createTcpRedisSeatLock } from "./tcp-redis.ts";
import { createUpstashSeatLock } from "./upstash.ts";

export type NodeSeatLock = {
  /** Absent when no Redis is configured: claims then use advisory locks alone. */
  seatLock?: SeatLock;
  /** The `redis` entry of /health. */
  healthCheck?: HealthCheck;
  /** What carries the locks, for the start-up log line. */
  description: string;
  close(): Promise<void>;
};

/**
 * Picks the seat lock of a Node instance: Upstash REST when configured, else TCP Redis, each behind
 * the failover to advisory locks; neither: advisory locks alone. Checks Redis once before serving,
 * so an instance that starts without it reports `degraded` from its first request on.
 */
export async function createNodeSeatLock(
  config: Config,
  options: { telemetry: FailoverTelemetry; logger: Pick<Logger, "warn"> },
): Promise<NodeSeatLock> {
  const { timeoutMs, cooldownMs } = config.seatLock;
  let primary: RedisSeatLock;
  let close = async () => {};
  let description: string;
  if (config.upstash) {
    primary = createUpstashSeatLock({ ...config.upstash, timeoutMs });
    description = `Upstash REST at ${new URL(config.upstash.url).host}`;
  } else if (config.redisUrl) {
    const tcp = createTcpRedisSeatLock({ url: config.redisUrl, timeoutMs });
    await tcp.connect().catch(() => undefined);
    primary = tcp;
    close = () => tcp.close();
    description = `Redis at ${new URL(config.redisUrl).host}`;
  } else if (config.redisCluster) {
    const tcp = createTcpRedisSeatLock({ cluster: config.redisCluster, timeoutMs });
    await tcp.connect().catch(() => undefined);
    primary = tcp;
    close = () => tcp.close();
    const seeds = config.redisCluster.nodes.map((node) => `${node.host}:${node.port}`).join(",");
    description = `Redis Cluster at ${seeds}`;
  } else {
    return { description: "PostgreSQL advisory locks (no Redis configured)", close };
  }
  const failover = createFailoverSeatLock({
    primary,
    fallback: advisorySeatLock,
    timeoutMs,
    cooldownMs,
    telemetry: {
      lockAcquisition: (backend, result) => options.telemetry.lockAcquisition(backend, result),
      lockFallback: (active, reason) => {
        options.logger.warn(
          { reason },
          active ? "seat locks fell back to PostgreSQL advisory locks" : "seat locks are back on Redis",
        );
        options.telemetry.lockFallback(active, reason);
      },
    },
  });
  await failover.check();
  return {
    seatLock: failover,
    healthCheck: { name: "redis", required: false, check: () => failover.check() },
    description: `${description}, PostgreSQL advisory locks while it fails`,
    close,
  };
}
