import { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { ConfigError, parseEnv } from "../src/env.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

/**
 * The Node entry's HTTP server against clients that no fetch() would be: raw bytes on a socket.
 * Slow heads and bodies are cut at the configured timeouts (408), and what Node's parser refuses
 * is answered in the API's problem+json envelope, not Node's bare status line.
 */
const adminUrl = serviceUrl("TEST_DATABASE_URL");

/** Longer than every timeout the server is given below, far shorter than Node's defaults (60 s, 300 s). */
const WAIT_MS = 15_000;

type Exchange = { text: string; closedByServer: boolean; bytesSent: number };

/**
 * Writes `head`, then `trickle` one byte every `everyMs`, and reads until the server closes the
 * connection or WAIT_MS passes.
 */
function exchange(port: number, head: string, trickle = "", everyMs = 250): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let text = "";
    let bytesSent = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const finish = (closedByServer: boolean) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ text, closedByServer, bytesSent });
    };
    const giveUp = setTimeout(() => finish(false), WAIT_MS);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(true));
    socket.connect(port, "127.0.0.1", () => {
      socket.write(head, "latin1");
      bytesSent += Buffer.byteLength(head, "latin1");
      let next = 0;
      timer = setInterval(() => {
        if (next >= trickle.length || socket.destroyed) return clearInterval(timer);
        socket.write(trickle[next++] as string);
        bytesSent += 1;
      }, everyMs);
    });
  });
}

function parse(text: string) {
  const [head = "", body = ""] = text.split("\r\n\r\n");
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const headers = Object.fromEntries(
    headerLines.map((line) => {
      const at = line.indexOf(":");
      return [line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim()];
    }),
  );
  return { status: Number(statusLine.split(" ")[1]), headers, body: body ? JSON.parse(body) : undefined };
}

describe.skipIf(!adminUrl)("HTTP server limits of the Node entry", () => {
  let url: string;
  let server: ServerProcess;
  let port: number;

  beforeAll(async () => {
    url = await createScratchDatabase(adminUrl as string);
    await migratePostgres(url);
    server = await startServerProcess({
      DATABASE_URL: url,
      HTTP_HEADERS_TIMEOUT_MS: "1000",
      HTTP_REQUEST_TIMEOUT_MS: "3000",
    });
    port = Number(new URL(server.url).port);
  });
  afterAll(async () => {
    await server?.stop();
    if (url) await dropScratchDatabase(adminUrl as string, url);
  });

  function expectProblem(answer: Exchange, status: number, code: string) {
    expect(answer.closedByServer, `server kept the connection open:\n${answer.text}`).toBe(true);
    const response = parse(answer.text);
    expect(response.status).toBe(status);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(response.body).toMatchObject({ status, code, requestId: expect.any(String) });
    expect(response.headers["x-request-id"]).toBe(response.body.requestId);
  }

  it("cuts a body sent a byte at a time with 408 once the request time is up, before the body ends", async () => {
    const body = JSON.stringify({ userId: "slow", seatIds: [crypto.randomUUID()] }).padEnd(200, " ");
    const head = `POST /reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const answer = await exchange(port, head, body);
    expectProblem(answer, 408, "REQUEST_TIMEOUT");
    expect(answer.bytesSent).toBeLessThan(head.length + body.length);
  });

  it("cuts a request head that never ends with 408", async () => {
    const answer = await exchange(
      port,
      "GET /health/live HTTP/1.1\r\nHost: x\r\n",
      "X-Slow: abcdefghijklmnopqrstuvwxyz",
    );
    expectProblem(answer, 408, "REQUEST_TIMEOUT");
  });

  it.each([
    ["a bare CR inside a header", "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n"],
    [
      "Content-Length together with Transfer-Encoding",
      "POST /reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "a Content-Length that is not a number",
      "POST /reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
    ],
    ["a request line that is not HTTP", "HELLO\r\n\r\n"],
  ])("answers %s with 400 MALFORMED_REQUEST as problem+json", async (_what, raw) => {
    expectProblem(await exchange(port, raw), 400, "MALFORMED_REQUEST");
  });

  it.each([
    ["an HTTP/1.1 request without Host", "GET /health/live HTTP/1.1\r\n\r\n", /Host/],
    ["OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", /target/],
    ["a backslash in the path", "GET /health\\live HTTP/1.1\r\nHost: x\r\n\r\n", /target/],
  ])(
    "answers %s, which the Node adapter cannot make a Request of, with 400 as problem+json",
    async (_what, raw, detail) => {
      const answer = await exchange(port, raw);
      expectProblem(answer, 400, "MALFORMED_REQUEST");
      expect(parse(answer.text).body.detail).toMatch(detail);
    },
  );

  it("answers a head over Node's header size limit with 431 as problem+json", async () => {
    const raw = `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`;
    expectProblem(await exchange(port, raw), 431, "HEADERS_TOO_LARGE");
  });

  it("still serves a well-formed request on the same server", async () => {
    const response = await fetch(`${server.url}/health/live`);
    expect(response.status).toBe(200);
  });
});

describe("HTTP server limit settings", () => {
  it("default to 5 s for the head and 30 s for the whole request, and a head may not outlast its request", () => {
    expect(parseEnv({}).http).toEqual({ headersTimeoutMs: 5_000, requestTimeoutMs: 30_000 });
    expect(parseEnv({ HTTP_REQUEST_TIMEOUT_MS: "10000" }).http.requestTimeoutMs).toBe(10_000);
    expect(() => parseEnv({ HTTP_HEADERS_TIMEOUT_MS: "20000", HTTP_REQUEST_TIMEOUT_MS: "10000" })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS/,
    );
    expect(() => parseEnv({ HTTP_REQUEST_TIMEOUT_MS: "soon" })).toThrow(ConfigError);
    expect(parseEnv({}).shutdownTimeoutMs).toBe(10_000);
  });
});
