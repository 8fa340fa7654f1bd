import { runEdgeServer } from "./edge-server.ts";

/** The slice of the Bun namespace this entry uses (no Bun types in the Node toolchain). */
declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: {
    port: number;
    hostname: string;
    fetch: (request: Request, server: BunServer) => Response | Promise<Response>;
  }): BunServer;
};
type BunServer = {
  stop(closeActiveConnections?: boolean): Promise<void> | void;
  requestIP(request: Request): { address: string } | null;
};

// bun src/entry/bun.ts (npm run start:bun)
await runEdgeServer({
  name: "bun",
  env: { ...Bun.env },
  serve: (fetch, port, hostname) => {
    const server = Bun.serve({
      port,
      hostname,
      fetch: (request, bun) => fetch(request, { remoteAddress: bun.requestIP(request)?.address }),
    });
    return { stop: async () => await server.stop() };
  },
  onShutdownSignal: (handler) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => handler(signal));
  },
  exit: (code) => process.exit(code),
});
