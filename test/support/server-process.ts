import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

export type ServerProcess = {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

/** A free loopback port, picked by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function collectOutput(child: ChildProcess): () => string {
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  return () => output;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export type ServerCommand = {
  name: string;
  file: string;
  args: string[];
  env: Record<string, string>;
  port: number;
  timeoutMs?: number;
  /** Runs after the process has exited, e.g. to remove its state directory. */
  cleanUp?: () => void;
};

/**
 * Starts a server as its own process group (runtime shims and wrangler run the real server as a
 * child) and waits until it answers /health/live. Stopping signals the whole group, and kills it
 * if it has not exited within 5 s.
 */
export async function spawnServer(command: ServerCommand): Promise<ServerProcess> {
  const child = spawn(command.file, command.args, {
    env: command.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output = collectOutput(child);
  // "close" comes after the output streams ended, so a failed start reports all it printed.
  let closed = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => {
      closed = true;
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${command.port}`;
  const server: ServerProcess = {
    url,
    process: child,
    output,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5_000);
      const code = await exited;
      clearTimeout(timer);
      command.cleanUp?.();
      return code;
    },
  };
  const deadline = Date.now() + (command.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (closed) throw new Error(`${command.name} exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/health/live`)).ok) return server;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.stop("SIGKILL");
  throw new Error(`${command.name} did not answer on ${url} in time:\n${output()}`);
}

/** What `npm start` runs, built by the test run's globalSetup. */
const NODE_ENTRY = ["dist/node.js"];

/**
 * Starts the real Node entry point (`npm start`'s code) as a separate OS process. The environment
 * is exactly what the caller passes, plus PATH. Without a PORT it picks a free one, and picks again
 * if another process took it before the server could bind it.
 */
export async function startServerProcess(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServerProcess> {
  return retryOnAddressInUse(
    async () => {
      const port = Number(env.PORT ?? (await freePort()));
      return spawnServer({
        name: "node",
        file: process.execPath,
        args: NODE_ENTRY,
        env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env, PORT: String(port) },
        port,
        timeoutMs,
      });
    },
    env.PORT === undefined ? 3 : 1,
  );
}

/** A free port is only free until someone binds it: a start that lost that race is tried again. */
export async function retryOnAddressInUse<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= attempts || !/address already in use|EADDRINUSE/i.test(String(error))) throw error;
    }
  }
}

/**
 * Runs an entry point (`npm start`'s by default; `dist/sidecar.js`, `dist/migrate.js`) to completion,
 * for start-up failures, and answers its exit code and output.
 */
export function runServerToExit(
  env: Record<string, string>,
  entry = NODE_ENTRY,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, entry, {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = collectOutput(child);
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output: output() })));
}
