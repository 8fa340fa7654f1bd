import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type ServerProcess, spawnServer } from "./server-process.ts";

/** The runtimes the app is served by: each through its real entry point, as its npm script starts it. */
export type RuntimeName = "node" | "bun" | "deno" | "workerd";

function command(
  runtime: RuntimeName,
  port: number,
  env: Record<string, string>,
  stateDir: string,
): { file: string; args: string[]; env: Record<string, string> } {
  switch (runtime) {
    case "node":
      return {
        file: process.execPath,
        args: ["--import", "tsx", "src/entry/node.ts"],
        env: { ...env, PORT: String(port) },
      };
    case "bun":
      return {
        file: "node_modules/.bin/bun",
        args: ["src/entry/bun.ts"],
        env: { ...env, PORT: String(port) },
      };
    case "deno":
      return {
        file: "node_modules/.bin/deno",
        args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "src/entry/deno.ts"],
        env: { ...env, PORT: String(port), DENO_NO_UPDATE_CHECK: "1" },
      };
    case "workerd":
      // The Worker's variables are bindings, passed as --var (what `wrangler secret put` sets in production).
      return {
        file: process.execPath,
        args: [
          "node_modules/wrangler/bin/wrangler.js",
          "dev",
          "--ip",
          "127.0.0.1",
          "--port",
          String(port),
          "--inspector-port",
          String(port + 1),
          "--test-scheduled",
          "--persist-to",
          stateDir,
          "--show-interactive-dev-session=false",
          "--log-level",
          "warn",
          ...Object.entries(env).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
        ],
        env: { WRANGLER_SEND_METRICS: "false", WRANGLER_LOG_PATH: stateDir },
      };
  }
}

/**
 * Starts the app on `runtime` as a separate process group and waits for /health/live. `env` is the
 * app's configuration; PATH and HOME are added (the runtimes keep their caches under HOME).
 */
export async function startRuntime(
  runtime: RuntimeName,
  env: Record<string, string>,
  options: { port?: number; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const stateDir = mkdtempSync(join(tmpdir(), `seats-${runtime}-`));
  const { file, args, env: runtimeEnv } = command(runtime, port, env, stateDir);
  return spawnServer({
    name: runtime,
    file,
    args,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...runtimeEnv },
    port,
    timeoutMs: options.timeoutMs ?? 60_000,
    cleanUp: () => rmSync(stateDir, { recursive: true, force: true }),
  });
}
