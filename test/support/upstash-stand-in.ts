import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";

/**
 * A local stand-in for the Upstash Redis REST endpoint, backed by a real redis-server, so the
 * Upstash seat lock is tested with the real @upstash/redis client. It speaks the wire protocol:
 * `POST /` with a JSON command array, `POST /pipeline` and `POST /multi-exec` with arrays of them,
 * `Authorization: Bearer <token>`, replies `{result}` / `{error}` (one per command for the batch
 * routes), strings base64-encoded when the request carries `Upstash-Encoding: base64`.
 *
 * Faults for the tests: `dropReplies(n)` runs the next n requests and then cuts the connection
 * without answering (a lost reply), `setLatency(ms)` answers late, `setDown(true)` answers 503.
 */
export type UpstashStandIn = {
  url: string;
  token: string;
  /** Every command received, in order: what the client really sent, retries included. */
  received: string[][];
  dropReplies(count: number): void;
  setLatency(ms: number): void;
  setDown(down: boolean): void;
  close(): Promise<void>;
};

type Reply = { result: unknown } | { error: string };
type Command = (string | number)[];

class BadRequest extends Error {}

export async function startUpstashStandIn(options: {
  redisUrl: string;
  token?: string;
}): Promise<UpstashStandIn> {
  const token = options.token ?? `stand-in-${crypto.randomUUID()}`;
  // RESP2 like Upstash; buffers so binary values survive the base64 encoding untouched.
  const redis = new Redis(options.redisUrl, { protocol: 2, maxRetriesPerRequest: 1 });
  const received: string[][] = [];
  let repliesToDrop = 0;
  let latencyMs = 0;
  let down = false;

  /**
   * Upstash runs scripts whose shebang carries `flags=allow-key-locking` (@upstash/ratelimit's
   * do); redis-server 7.0 refuses that flag, so it is dropped here, and EVALSHA of the original
   * script's digest runs the script as loaded.
   */
  const scriptDigests = new Map<string, string>();
  function compatible(command: string[]): string[] {
    const name = command[0]?.toLowerCase();
    const script = command[1] ?? "";
    if ((name === "eval" || name === "eval_ro") && /^#!lua flags=[^\n]*allow-key-locking/.test(script)) {
      const stripped = script.replace(/^#!lua flags=[^\n]*\n/, "");
      scriptDigests.set(
        createHash("sha1").update(script).digest("hex"),
        createHash("sha1").update(stripped).digest("hex"),
      );
      return [command[0] as string, stripped, ...command.slice(2)];
    }
    if ((name === "evalsha" || name === "evalsha_ro") && scriptDigests.has(command[1] ?? "")) {
      return [command[0] as string, scriptDigests.get(command[1] ?? "") as string, ...command.slice(2)];
    }
    return command;
  }

  async function run(command: Command): Promise<Reply> {
    const [name, ...args] = compatible(command.map(String));
    received.push(command.map(String));
    try {
      return { result: await redis.callBuffer(name as string, ...args) };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  async function runTransaction(commands: Command[]): Promise<Reply[]> {
    const transaction = redis.multi();
    for (const command of commands) {
      const [name, ...args] = compatible(command.map(String));
      received.push(command.map(String));
      transaction.callBuffer(name as string, ...args);
    }
    const results = (await transaction.exec()) ?? [];
    return results.map(([error, result]) => (error ? { error: error.message } : { result }));
  }

  async function handle(path: string, body: unknown): Promise<{ status: number; payload: unknown }> {
    if (path === "/" || path === "") {
      const reply = await run(asCommand(body));
      return { status: "error" in reply ? 400 : 200, payload: reply };
    }
    if (path === "/pipeline") {
      // Not atomic, but in order: one connection, written one after the other.
      const commands = asCommands(body);
      return { status: 200, payload: await Promise.all(commands.map(run)) };
    }
    if (path === "/multi-exec") {
      return { status: 200, payload: await runTransaction(asCommands(body)) };
    }
    return { status: 404, payload: { error: `ERR unknown endpoint ${path}` } };
  }

  const server = createServer((request, response) => {
    void serve(request, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, { error: String(error) }, false);
    });
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const raw = await readBody(request);
    if (request.headers.authorization !== `Bearer ${token}`) {
      send(response, 401, { error: "Unauthorized" }, false);
      return;
    }
    if (down) {
      send(response, 503, { error: "Service Unavailable" }, false);
      return;
    }
    if (request.method !== "POST") {
      send(response, 405, { error: "ERR only POST is served here" }, false);
      return;
    }
    let outcome: { status: number; payload: unknown };
    try {
      outcome = await handle(
        new URL(request.url ?? "/", "http://stand-in").pathname,
        JSON.parse(raw || "null"),
      );
    } catch (error) {
      if (!(error instanceof BadRequest || error instanceof SyntaxError)) throw error;
      outcome = { status: 400, payload: { error: `ERR ${error.message}` } };
    }
    if (repliesToDrop > 0) {
      repliesToDrop--;
      request.socket.destroy();
      return;
    }
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (request.socket.destroyed) return;
    send(response, outcome.status, outcome.payload, request.headers["upstash-encoding"] === "base64");
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    received,
    dropReplies: (count) => {
      repliesToDrop = count;
    },
    setLatency: (ms) => {
      latencyMs = ms;
    },
    setDown: (value) => {
      down = value;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}

function asCommand(body: unknown): Command {
  if (!Array.isArray(body) || body.length === 0) throw new BadRequest("a command is a non-empty JSON array");
  if (!body.every((part) => typeof part === "string" || typeof part === "number")) {
    throw new BadRequest("command parts are strings or numbers");
  }
  return body as Command;
}

function asCommands(body: unknown): Command[] {
  if (!Array.isArray(body)) throw new BadRequest("a pipeline is a JSON array of commands");
  return body.map(asCommand);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/** Upstash sends the status reply OK as is and every other string base64-encoded. */
function encode(value: unknown, base64: boolean): unknown {
  if (Buffer.isBuffer(value)) {
    const text = value.toString("utf8");
    if (!base64 || text === "OK") return text;
    return value.toString("base64");
  }
  if (typeof value === "string")
    return base64 && value !== "OK" ? Buffer.from(value).toString("base64") : value;
  if (Array.isArray(value)) return value.map((item) => encode(item, base64));
  return value;
}

function send(response: ServerResponse, status: number, payload: unknown, base64: boolean): void {
  const body = Array.isArray(payload)
    ? payload.map((reply: Reply) => ("result" in reply ? { result: encode(reply.result, base64) } : reply))
    : payload !== null && typeof payload === "object" && "result" in payload
      ? { result: encode((payload as { result: unknown }).result, base64) }
      : payload;
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}
