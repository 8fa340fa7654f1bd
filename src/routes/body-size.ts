import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./problem.ts";

/**
 * Refuses request bodies over `maxBytes` with 413 PAYLOAD_TOO_LARGE. A body with a declared
 * Content-Length is judged on that header alone: the server's HTTP parser never reads past it, and
 * not touching the body keeps @hono/node-server on its fast path (reading `c.req.raw.body`, as
 * hono's bodyLimit does first, builds a full web Request with a stream for every request). Bodies
 * without a length (chunked) are counted as they stream, by hono's bodyLimit.
 *
 * A body declared empty (`Content-Length: 0`) is no body, whatever its Content-Type says: clients
 * that send `Content-Type: application/json` on every call send it with `POST .../pay`, and an empty
 * string is not JSON. The request goes on without its Content-Type, as a request without a body:
 * an optional body is then absent, a required one fails field by field.
 */
export function limitBodySize(maxBytes: number): MiddlewareHandler {
  const tooLarge = (): never => {
    throw new ApiError("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${maxBytes} bytes.`);
  };
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (!/^\d+$/.test(declared) || Number(declared) > maxBytes) tooLarge();
      if (Number(declared) === 0 && c.req.header("content-type") !== undefined) {
        const headers = new Headers(c.req.raw.headers);
        headers.delete("content-type");
        const { url, method, signal } = c.req.raw;
        c.req.raw = new Request(url, { method, headers, signal });
      }
      return next();
    }
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return streamed(c, next);
  };
}
