import { execFile, execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.ts";

/**
 * A PostgreSQL cluster of the test's own (initdb + pg_ctl on a free loopback port in a temp
 * directory), for fault tests that stop and restart the server. The machine's shared PostgreSQL
 * is never touched. PostgreSQL refuses to run as root: as root, the tools run as `postgres`.
 */

/** The folder of initdb and pg_ctl (`pg_config --bindir`), or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  const probe = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const dir = probe.status === 0 ? probe.stdout.trim() : undefined;
  return dir && existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl")) ? dir : undefined;
}

const asRoot = process.getuid?.() === 0;

function command(binDir: string, tool: string, args: string[]): [string, string[]] {
  const file = join(binDir, tool);
  return asRoot ? ["runuser", ["-u", "postgres", "--", file, ...args]] : [file, args];
}

function run(binDir: string, tool: string, args: string[]): string {
  const [file, argv] = command(binDir, tool, args);
  return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
}

/** The same without blocking the event loop: the test's load goes on while PostgreSQL stops or starts. */
function runAsync(binDir: string, tool: string, args: string[]): Promise<void> {
  const [file, argv] = command(binDir, tool, args);
  return new Promise((resolve, reject) =>
    execFile(file, argv, { timeout: 60_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`${tool} ${args.join(" ")}: ${error.message}\n${stderr}`)) : resolve(),
    ),
  );
}

export type StopMode = "fast" | "immediate";

export type PostgresCluster = {
  port: number;
  /** The `postgres` database of the cluster, as superuser over trust. */
  url: string;
  /** `pg_ctl stop -m <mode>`: fast ends every session cleanly, immediate is a crash (recovery on start). */
  stop(mode: StopMode): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it (immediate) and removes its files. */
  destroy(): void;
};

export async function startPostgresCluster(binDir: string): Promise<PostgresCluster> {
  const root = mkdtempSync(join(tmpdir(), "pg-fault-"));
  if (asRoot) {
    const { uid, gid } = postgresUser();
    chownSync(root, uid, gid);
  }
  const dataDir = join(root, "data");
  run(binDir, "initdb", ["-D", dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${root}`,
    "-c max_connections=100",
    // Speed for a test machine; commits still reach the OS before they are acknowledged, so a
    // killed server (immediate stop) loses nothing acknowledged.
    "-c fsync=off",
    "-c full_page_writes=off",
  ].join(" ");
  const startArgs = ["-D", dataDir, "-o", options, "-l", join(root, "log"), "-w", "-t", "60", "start"];
  let running = false;
  const cluster: PostgresCluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop(mode) {
      await runAsync(binDir, "pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "30", "stop"]);
      running = false;
    },
    async start() {
      await runAsync(binDir, "pg_ctl", startArgs);
      running = true;
    },
    destroy() {
      process.removeListener("exit", cluster.destroy);
      try {
        if (running) run(binDir, "pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
        running = false;
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
  // A test run that ends without its afterAll (a timeout, a crash) still stops the server.
  process.once("exit", cluster.destroy);
  await cluster.start();
  return cluster;
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}
