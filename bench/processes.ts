import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { freePort } from "../test/support/server-process.ts";

/** The processes a bench run starts, and how it watches their memory. */

export type BenchProcess = {
  url: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
};

/**
 * Starts `node [nodeArgs] <entry>` (through tsx for a bench-only `.ts` helper) with exactly `env` (plus PATH) and waits until
 * `readyPath` answers. Its output goes to `logFile`, as a log collector would take it.
 */
export async function startNodeProcess(options: {
  entry: string;
  env: Record<string, string>;
  logFile: string;
  readyPath: string;
  nodeArgs?: string[];
  timeoutMs?: number;
}): Promise<BenchProcess> {
  const port = options.env.PORT ?? String(await freePort());
  const log = createWriteStream(options.logFile);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      ...(options.entry.endsWith(".ts") ? ["--import", "tsx"] : []),
      options.entry,
    ],
    { env: { PATH: process.env.PATH ?? "", ...options.env, PORT: port }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${options.entry} exited with ${child.exitCode}; see ${options.logFile}`);
    }
    try {
      if ((await fetch(`${url}${options.readyPath}`)).ok) {
        return { url, pid: child.pid as number, logFile: options.logFile, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`${options.entry} did not answer ${options.readyPath} in time; see ${options.logFile}`);
}

/** Resident memory of a process in MB: current (VmRSS) and peak (VmHWM), from /proc. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs`; `take()` answers the highest seen since the last take. */
export function sampleMemory(pid: number | undefined, intervalMs = 100) {
  let highest = 0;
  const timer = setInterval(() => {
    if (pid === undefined) return;
    highest = Math.max(highest, memoryOf(pid)?.rssMb ?? 0);
  }, intervalMs);
  timer.unref();
  return {
    take(): number {
      const seen = Math.max(highest, pid === undefined ? 0 : (memoryOf(pid)?.rssMb ?? 0));
      highest = 0;
      return seen;
    },
    stop: () => clearInterval(timer),
  };
}

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds used so far by the processes `select` picks: one pid, or every process with that
 * command name whose command line passes `line` (PostgreSQL backends name their database there).
 */
function cpuSecondsOf(select: { pid?: number; comm?: string; line?: (cmdline: string) => boolean }): number {
  let ticks = 0;
  const pids =
    select.pid !== undefined
      ? [String(select.pid)]
      : readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      if (select.comm !== undefined && stat.slice(stat.indexOf("(") + 1, close) !== select.comm) continue;
      if (select.line && !select.line(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) continue;
      const fields = stat.slice(close + 2).split(" ");
      // utime and stime are fields 14 and 15 of /proc/PID/stat; fields[0] here is field 3.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / TICKS_PER_SECOND;
}

export type CpuShares = { service: number; loadGenerator: number; postgres: number; redis: number };

/**
 * CPU seconds of each party of a run so far; two snapshots apart give a scenario's share.
 * PostgreSQL counts the backends of the bench's database and the server's own workers (WAL
 * writer, checkpointer, ...), not other databases' backends on the same server.
 */
export function cpuSnapshot(servicePid: number | undefined, database: string): CpuShares {
  const own = process.cpuUsage();
  const backend = /postgres: \S+: \S+ \S+ (\[local\]|[\d.:]+\(\d+\))/;
  const ours = (cmdline: string) => cmdline.includes(` ${database} `) || !backend.test(cmdline);
  return {
    service: servicePid === undefined ? Number.NaN : cpuSecondsOf({ pid: servicePid }),
    loadGenerator: (own.user + own.system) / 1e6,
    postgres: cpuSecondsOf({ comm: "postgres", line: ours }),
    redis: cpuSecondsOf({ comm: "redis-server" }),
  };
}
