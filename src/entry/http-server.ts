import type { Server, ServerOptions } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Node's HTTP server as an API wants it. Node's defaults serve browsers on slow links: 60 s for the
 * request head, 300 s for a whole request, checked every 30 s. A client that trickles a body one
 * byte a second would hold a connection (and a pool slot, were the body being read in a
 * transaction) for minutes; here it gets 408 once its time is up.
 */
export function httpServerOptions(limits: {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Both timeouts are enforced by a periodic check: this is how late they may fire at most.
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    // Node would answer a missing Host with a bare 400 of its own; the request listener refuses it
    // instead, in the problem envelope (answerRefusedRequest).
    requireHostHeader: false,
  };
}

type ParserRefusal = { status: number; title: string; code: string; detail: string };

const HEADERS_TOO_LARGE: ParserRefusal = {
  status: 431,
  title: "Request header fields too large",
  code: "HEADERS_TOO_LARGE",
  detail: "The request head is larger than the server accepts; send fewer or shorter headers.",
};
const REQUEST_TIMEOUT: ParserRefusal = {
  status: 408,
  title: "Request timeout",
  code: "REQUEST_TIMEOUT",
  detail: "The request did not arrive in time; send it again, at once.",
};

/** What Node's HTTP parser refused (an `HPE_*` code), as the answer's detail. */
function malformed(code: string | undefined): ParserRefusal {
  const detail =
    code === "HPE_UNEXPECTED_CONTENT_LENGTH"
      ? "Content-Length and Transfer-Encoding must not both be sent."
      : code === "HPE_INVALID_CONTENT_LENGTH"
        ? "Content-Length is not a valid length."
        : code === "HPE_INVALID_TRANSFER_ENCODING"
          ? "Transfer-Encoding is not valid."
          : code === "HPE_INVALID_HEADER_TOKEN" || code === "HPE_LF_EXPECTED" || code === "HPE_CR_EXPECTED"
            ? "A header is malformed (invalid character, or a bare CR or LF)."
            : "The request is not valid HTTP/1.1.";
  return { status: 400, title: "Malformed request", code: "MALFORMED_REQUEST", detail };
}

function refusalFor(error: NodeJS.ErrnoException): ParserRefusal {
  if (error.code === "HPE_HEADER_OVERFLOW") return HEADERS_TOO_LARGE;
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") return REQUEST_TIMEOUT;
  return malformed(error.code);
}

/** The app's problem+json envelope, for a request that never reached the app. */
function problemOf(refusal: ParserRefusal): { body: string; requestId: string } {
  const requestId = crypto.randomUUID();
  const body = JSON.stringify({
    type: `/problems/${refusal.code.toLowerCase().replaceAll("_", "-")}`,
    title: refusal.title,
    status: refusal.status,
    detail: refusal.detail,
    code: refusal.code,
    requestId,
  });
  return { body, requestId };
}

/** The envelope written straight to the socket: the parser gave up, there is no response object. */
function rawProblem(refusal: ParserRefusal): string {
  const { body, requestId } = problemOf(refusal);
  return [
    `HTTP/1.1 ${refusal.status} ${refusal.title}`,
    "Content-Type: application/problem+json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    "Connection: close",
    "",
    body,
  ].join("\r\n");
}

/**
 * Answers what Node's parser refuses before the app sees a request (a bare CR in a header,
 * Content-Length with Transfer-Encoding, a bad Content-Length, a head over the size limit, a
 * request past its time) in the same problem+json envelope as every other error, then closes the
 * connection, as Node does. A connection already answering, or already gone, is only closed.
 */
export function answerParserRefusals(server: Pick<Server, "on">): void {
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: { _headerSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?._headerSent) socket.write(rawProblem(refusalFor(error)));
    socket.destroy();
  });
}

/**
 * What the Node adapter cannot turn into a web Request (a request without Host, a target that is no
 * path such as `OPTIONS *`, a backslash in the path), refused in the problem envelope instead of the
 * adapter's bare 400. Passed as @hono/node-server's `errorHandler`, which sees only these: the
 * app's own errors are answered by the app.
 */
export function answerRefusedRequest(error: unknown): Response {
  const reason = error instanceof Error ? error.message : "";
  const detail = /host/i.test(reason)
    ? "The request has no valid Host header; HTTP/1.1 requires one."
    : /url|path|scheme/i.test(reason)
      ? "The request target must be a path on this server, such as /health (not * and no backslash)."
      : "The request is not valid HTTP/1.1.";
  const { body, requestId } = problemOf({
    status: 400,
    title: "Malformed request",
    code: "MALFORMED_REQUEST",
    detail,
  });
  return new Response(body, {
    status: 400,
    headers: {
      "Content-Type": "application/problem+json",
      "X-Request-Id": requestId,
      Connection: "close",
    },
  });
}
