import { createApp } from "../app.ts";
import { tickingHints } from "../booking/seat-watch.ts";
import { type Config, ConfigError, parseEnv } from "../env.ts";
import { startSweeper } from "../expiry/sweeper.ts";
import { createConsoleLogger } from "./console-logger.ts";
import { createEdgeServices, type EdgeDatabase, edgeDeps, openEdgeDatabase } from "./edge.ts";
import { runShutdown } from "./shutdown-steps.ts";

/** What a long-running runtime (Deno, Bun) lends the server: its environment, its HTTP server, its signals. */
export type ServerRuntime = {
  name: string;
  env: Record<string, string | undefined>;
  /**
   * Listens on `hostname:port` (HOST, PORT). `peer.remoteAddress`: the connection's client address,
   * for rate limits of callers without a token.
   */
  serve(
    fetch: (request: Request, peer: { remoteAddress?: string }) => Response | Promise<Response>,
    port: number,
    hostname: string,
  ): { stop(): Promise<void> };
  onShutdownSignal(handler: (signal: string) => void): void;
  exit(code: number): never;
};

/**
 * Deno and Bun run one process for many requests, like Node: one database pool for the process,
 * and the local sweeper next to the server, whether or not QStash callbacks are configured.
 * Migrations are not run here; `npm run db:migrate` (Node) applies them.
 */
export async function runEdgeServer(runtime: ServerRuntime): Promise<void> {
  let config: Config;
  let database: EdgeDatabase;
  try {
    config = parseEnv(runtime.env);
    database = openEdgeDatabase(config, { poolSize: config.databasePoolSize });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return runtime.exit(1);
  }
  const logger = createConsoleLogger(config.logLevel);
  const services = createEdgeServices(
    config,
    logger,
    (_request, peer) => (peer as { remoteAddress?: string } | undefined)?.remoteAddress,
  );
  // No LISTEN connection here: live seat maps read the watched sessions again every second.
  const seatHints = tickingHints(1_000);
  const app = createApp({ ...edgeDeps(services, database.db), seatChangeHints: seatHints });
  const sweeper = startSweeper({
    db: database.db,
    intervalMs: config.expirySweepIntervalMs,
    seatLock: services.seatLock,
    onError: (error) => logger.warn({ err: error }, "expiry sweep failed; retrying next interval"),
    onSwept: (expired) => {
      if (expired > 0) logger.info({ expired }, "expired overdue holds");
    },
  });
  const server = runtime.serve((request, peer) => app.fetch(request, peer), config.port, config.host);
  logger.info(
    { runtime: runtime.name, port: config.port, database: database.driver, ...services.description },
    `listening on http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`,
  );
  runtime.onShutdownSignal(async (signal) => {
    logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, "shutting down");
    // Each step bounded, the whole within SHUTDOWN_TIMEOUT_MS, whatever the database does.
    const code = await runShutdown(
      [
        // Open seat streams end first, or the server would wait for them to the deadline.
        { name: "seat streams", run: async () => seatHints.close() },
        { name: "http server", run: () => server.stop(), share: 0.5 },
        { name: "expiry sweeper", run: () => sweeper.stop() },
        { name: "database", run: () => database.close() },
      ],
      { deadlineMs: config.shutdownTimeoutMs, logger },
    );
    runtime.exit(code);
  });
}
