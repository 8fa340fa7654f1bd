import { type ChildProcess, spawn } from "node:child_process";
import { waitFor } from "./redis-server.ts";
import { freePort } from "./server-process.ts";

/** One API server process (`npx tsx src/entry/node.ts`) on its own loopback port. */
export type Instance = {
  port: number;
  url: string;
  process: ChildProcess;
  /** Everything it printed, for a failing test's message. */
  output(): string;
  stop(): Promise<void>;
};

// Service variables of the developer's shell must not leak into the instances under test.
const INHERITED = ["PATH", "HOME", "TMPDIR", "LANG", "NODE_OPTIONS", "npm_config_cache"];

export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const inherited = Object.fromEntries(
    INHERITED.flatMap((name) => (process.env[name] ? [[name, process.env[name] as string]] : [])),
  );
  // Its own process group, so stopping it also stops the node process tsx starts.
  const child = spawn("npx", ["tsx", "src/entry/node.ts"], {
    env: { ...inherited, LOG_LEVEL: "warn", ...env, PORT: String(port) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const signal = (name: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, name);
      } catch {
        // already gone
      }
    }
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`instance exited early:\n${output}`);
        return fetch(`${url}/health/live`).then(
          (response) => response.ok,
          () => false,
        );
      },
      90_000,
      `instance on port ${port}`,
    );
  } catch (error) {
    signal("SIGKILL");
    throw error;
  }
  return {
    port,
    url,
    process: child,
    output: () => output,
    stop: async () => {
      signal("SIGTERM");
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
      ]);
      if (!stopped) {
        signal("SIGKILL");
        await exited;
      }
    },
  };
}
