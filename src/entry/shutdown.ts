import type { Server } from "node:http";
import type { Logger } from "../ports.ts";
import { runShutdown, type ShutdownStep } from "./shutdown-steps.ts";

/**
 * The HTTP server's part: stop accepting, let requests in flight finish, close idle keep-alive
 * connections; when its time is up, cut the connections still open (streams, stuck requests).
 */
export function closeHttpServer(server: Server, share = 0.5): ShutdownStep {
  return {
    name: "http server",
    share,
    run: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    onExpired: () => server.closeAllConnections(),
  };
}

/**
 * SIGTERM and SIGINT run `steps` once, within `deadlineMs`, then exit. A second signal while
 * shutting down exits at once.
 */
export function exitOnSignals(
  steps: () => ShutdownStep[],
  options: { deadlineMs: number; logger: Logger },
): void {
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) process.exit(1);
    shuttingDown = true;
    options.logger.info({ signal, deadlineMs: options.deadlineMs }, "shutting down");
    runShutdown(steps(), options).then(
      (code) => process.exit(code),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
