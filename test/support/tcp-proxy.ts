import { createServer, type Server, Socket } from "node:net";

/**
 * What the proxy does with the bytes of live and new connections: pass them on, hold them (a
 * stalled network: nothing arrives, nothing is refused, the kernel buffers), or read and discard
 * them (a path that loses every packet while both ends think the connection is fine).
 */
export type ProxyMode = "forward" | "pause" | "drop";

/**
 * A loopback TCP proxy to a real service that a test can close and reopen on the same port: closed,
 * clients get ECONNREFUSED as from a broker that is down; closing also cuts live connections.
 * Open, it can stall or drop the traffic (`setMode`) and reset every live connection (`reset`).
 */
export async function startTcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let accepted = 0;
  let mode: ProxyMode = "forward";

  /** Copies `from`'s bytes to `to` as the mode says. Test traffic is small: no back-pressure. */
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => {
      if (mode === "forward" && !to.destroyed) to.write(chunk);
    });
  };

  const track = (socket: Socket, peer: () => Socket) => {
    sockets.add(socket);
    if (mode === "pause") socket.pause();
    socket.on("close", () => {
      sockets.delete(socket);
      peer().destroy();
    });
    socket.on("error", () => {
      socket.destroy();
      peer().destroy();
    });
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer((client) => {
        accepted += 1;
        const upstream = new Socket();
        track(client, () => upstream);
        track(upstream, () => client);
        forward(client, upstream);
        forward(upstream, client);
        upstream.connect(target.port, target.host);
      });
      next.once("error", reject);
      next.listen(port, "127.0.0.1", () => {
        const address = next.address();
        if (address && typeof address === "object") port = address.port;
        server = next;
        resolve();
      });
    });

  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });

  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    /** Connections open through the proxy now (each counts once, not its two sockets). */
    get live() {
      return sockets.size / 2;
    },
    open: listen,
    close,
    setMode(next: ProxyMode) {
      mode = next;
      for (const socket of sockets) {
        if (mode === "pause") socket.pause();
        else socket.resume();
      }
    },
    /** Ends every live connection with a TCP reset; the proxy keeps accepting new ones. */
    reset() {
      for (const socket of sockets) {
        try {
          socket.resetAndDestroy();
        } catch {
          socket.destroy();
        }
      }
    },
  };
}
