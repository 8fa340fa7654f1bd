import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { WebSocketServer } from "ws";

/**
 * A local stand-in for Neon's WebSocket proxy: each WebSocket connection to `/v1?address=host:port`
 * becomes a TCP connection to that PostgreSQL, and every binary message carries raw PostgreSQL wire
 * bytes, both ways, untouched. With it the real @neondatabase/serverless driver talks to the
 * machine's own PostgreSQL. Only the `allowedHosts` are dialled (loopback by default).
 */
export type NeonProxyStandIn = {
  /** The proxy as NEON_WEBSOCKET_PROXY takes it: `ws://127.0.0.1:PORT/v1`. */
  url: string;
  /** Connections opened so far: proof the driver really went through the proxy. */
  connections(): number;
  close(): Promise<void>;
};

export async function startNeonProxyStandIn(
  options: { allowedHosts?: string[]; port?: number } = {},
): Promise<NeonProxyStandIn> {
  const allowed = new Set(options.allowedHosts ?? ["127.0.0.1", "localhost", "::1"]);
  const server = new WebSocketServer({ host: "127.0.0.1", port: options.port ?? 0, path: "/v1" });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  let opened = 0;
  const sockets = new Set<Socket>();

  server.on("connection", (webSocket, request) => {
    const address = new URL(request.url ?? "", "http://proxy").searchParams.get("address") ?? "";
    const separator = address.lastIndexOf(":");
    const host = address.slice(0, separator).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(separator + 1));
    if (!allowed.has(host) || !Number.isInteger(port) || port <= 0) {
      webSocket.close(1008, `address not allowed: ${address}`);
      return;
    }
    opened += 1;
    const tcp = connect({ host, port });
    sockets.add(tcp);
    tcp.setNoDelay(true);
    const pending: Buffer[] = [];
    tcp.once("connect", () => {
      for (const chunk of pending.splice(0)) tcp.write(chunk);
    });
    webSocket.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (tcp.connecting) pending.push(chunk);
      else tcp.write(chunk);
    });
    tcp.on("data", (chunk) => webSocket.send(chunk, { binary: true }));
    tcp.on("close", () => {
      sockets.delete(tcp);
      webSocket.close();
    });
    tcp.on("error", () => webSocket.terminate());
    webSocket.on("close", () => tcp.end());
    webSocket.on("error", () => tcp.destroy());
  });

  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/v1`,
    connections: () => opened,
    close: async () => {
      for (const client of server.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
