import { readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { Redis } from "ioredis";
import type pg from "pg";

/** What the figures were measured on: they mean little without it. */
export async function describeMachine(db: pg.Pool, redisUrl: string): Promise<[string, string][]> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
  const { rows } = await db.query<{ version: string }>("SELECT current_setting('server_version') AS version");
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0 });
  let redisVersion = "unknown";
  try {
    await redis.connect();
    redisVersion = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown";
  } catch {
    // only a description
  } finally {
    redis.disconnect();
  }
  return [
    ["cores (nproc)", String(availableParallelism())],
    ["CPU", `${model}${mhz ? ` @ ${Math.round(Number(mhz))} MHz` : ""}`],
    ["memory", `${Math.round(totalmem() / 2 ** 30)} GiB`],
    ["Node.js", process.version],
    ["PostgreSQL", rows[0]?.version ?? "unknown"],
    ["Redis", redisVersion],
  ];
}
