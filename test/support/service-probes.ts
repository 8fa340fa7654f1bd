import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { homedir } from "node:os";
import amqp from "amqplib";
import pg from "pg";

/**
 * Protocol-level checks that a service really answers at a URL: a port that merely accepts a
 * connection (another program, a half-started server) is not enough. Each check resolves when the
 * service answered as it should and rejects with the reason otherwise, within `timeoutMs`.
 */
export type Probe = (url: string, timeoutMs: number) => Promise<void>;

/** A failure in a few words: the error code where there is one (ECONNREFUSED), else the message. */
export function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : error.message;
  }
  return String(error);
}

/** Rejects with "no answer within N ms" when `work` has not settled in time; `cancel` frees its sockets. */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, cancel: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cancel();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Logs in and runs `SELECT 1`. */
export const probePostgres: Probe = async (url, timeoutMs) => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on("error", () => {});
  try {
    await withDeadline(
      client.connect().then(() => client.query("SELECT 1")),
      timeoutMs,
      () => void client.end().catch(() => {}),
    );
  } finally {
    await client.end().catch(() => {});
  }
};

/** Sends PING (after AUTH when the URL has a password) and expects +PONG. */
export const probeRedis: Probe = (url, timeoutMs) => {
  const { hostname, port, password } = new URL(url);
  const command = (...words: string[]) =>
    `*${words.length}\r\n${words.map((word) => `$${Buffer.byteLength(word)}\r\n${word}\r\n`).join("")}`;
  return exchange(
    { host: hostname, port: Number(port || 6379) },
    (password ? command("AUTH", decodeURIComponent(password)) : "") + command("PING"),
    (reply) => {
      if (reply.includes("+PONG\r\n")) return true;
      const error = /^-(.*)\r\n/m.exec(reply);
      if (error) throw new Error(`Redis answered "${error[1]}"`);
      return false;
    },
    timeoutMs,
  );
};

/** Opens an AMQP 0-9-1 connection with the URL's credentials (the full handshake) and closes it. */
export const probeAmqp: Probe = async (url, timeoutMs) => {
  let late = false;
  const opening = amqp.connect(url, { timeout: timeoutMs });
  try {
    const connection = await withDeadline(opening, timeoutMs, () => {
      late = true;
    });
    connection.on("error", () => {});
    await connection.close();
  } finally {
    // A handshake that completes after the deadline is closed rather than left open.
    if (late) opening.then((connection) => connection.close()).catch(() => {});
  }
};

/**
 * Where a Docker engine would be, in the order testcontainers looks: `DOCKER_HOST`, else the
 * default socket and the rootless ones.
 */
export function dockerEndpoints(env: Record<string, string | undefined>): string[] {
  if (env.DOCKER_HOST) return [env.DOCKER_HOST];
  const sockets = ["/var/run/docker.sock", `${homedir()}/.docker/run/docker.sock`];
  if (env.XDG_RUNTIME_DIR) sockets.push(`${env.XDG_RUNTIME_DIR}/docker.sock`);
  sockets.push(`${homedir()}/.docker/desktop/docker.sock`);
  return sockets.map((socket) => `unix://${socket}`);
}

/** Asks a Docker engine's API for `GET /_ping` and expects `200 OK`. */
export const probeDocker: Probe = (endpoint, timeoutMs) => {
  const target = new URL(endpoint);
  const where =
    target.protocol === "unix:"
      ? { socketPath: target.pathname }
      : { host: target.hostname, port: Number(target.port || 2375) };
  return new Promise<void>((resolve, reject) => {
    const ping = request({ ...where, path: "/_ping", timeout: timeoutMs, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => {
        body += chunk;
      });
      response.on("end", () =>
        response.statusCode === 200 && body.trim() === "OK"
          ? resolve()
          : reject(new Error(`${endpoint} answered ${response.statusCode} to GET /_ping`)),
      );
    });
    ping.on("timeout", () => ping.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    ping.on("error", reject);
    ping.end();
  });
};

/** The first Docker endpoint whose API answers, or a rejection naming every endpoint tried. */
export async function findDocker(env: Record<string, string | undefined>, timeoutMs = 1_000): Promise<void> {
  const failures: string[] = [];
  for (const endpoint of dockerEndpoints(env)) {
    try {
      return await probeDocker(endpoint, timeoutMs);
    } catch (error) {
      failures.push(`${endpoint.replace(/^unix:\/\//, "")} ${reasonOf(error)}`);
    }
  }
  throw new Error(`tried ${failures.join(", ")}`);
}

/** Writes `send`, reads until `done(reply)` says so (or throws), all within `timeoutMs`. */
function exchange(
  target: { host: string; port: number },
  send: string,
  done: (reply: string) => boolean,
  timeoutMs: number,
): Promise<void> {
  let socket: Socket | undefined;
  const talk = new Promise<void>((resolve, reject) => {
    let reply = "";
    socket = connect(target, () => socket?.write(send));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      reply += chunk;
      try {
        if (done(reply)) resolve();
      } catch (error) {
        reject(error);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`${target.host}:${target.port} closed the connection`)));
  });
  return withDeadline(talk, timeoutMs, () => socket?.destroy()).finally(() => socket?.destroy());
}
