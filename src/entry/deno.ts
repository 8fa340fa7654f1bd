import { runEdgeServer } from "./edge-server.ts";

/** The slice of the Deno namespace this entry uses (no Deno types in the Node toolchain). */
declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: (request: Request, info: { remoteAddr: { hostname?: string } }) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> };
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  exit(code: number): never;
};

// deno run --allow-net --allow-env --allow-read --allow-sys src/entry/deno.ts (npm run start:deno)
await runEdgeServer({
  name: "deno",
  env: Deno.env.toObject(),
  serve: (fetch, port, hostname) => {
    const server = Deno.serve({ port, hostname, onListen: () => {} }, (request, info) =>
      fetch(request, { remoteAddress: info.remoteAddr.hostname }),
    );
    return { stop: () => server.shutdown() };
  },
  onShutdownSignal: (handler) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const)
      Deno.addSignalListener(signal, () => handler(signal));
  },
  exit: (code) => Deno.exit(code),
});
