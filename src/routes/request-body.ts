import type { Context, MiddlewareHandler, Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./problem.ts";

/** The media types hono's JSON validator parses: application/json and application/*+json. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** True when a Content-Type's media type (its parameters aside) is one hono parses as JSON. */
export function isJsonMediaType(contentType: string): boolean {
  return JSON_MEDIA_TYPE.test(contentType.split(";")[0]?.trim() ?? "");
}
const DIGITS = /^\d+$/;

/**
 * Admits a request's body, in one layer: its size, then (for JSON) its bytes as strict UTF-8.
 *
 * Size: bodies over `maxBytes` are refused with 413 PAYLOAD_TOO_LARGE. A body with a declared
 * Content-Length is judged on that header alone: the server's HTTP parser never reads past it, and
 * not touching the body keeps @hono/node-server on its fast path (reading `c.req.raw.body`, as
 * hono's bodyLimit does first, builds a full web Request with a stream for every request). Bodies
 * without a length (chunked) are counted as they stream, by hono's bodyLimit.
 *
 * A body declared empty (`Content-Length: 0`) is no body, whatever its Content-Type says: clients
 * that send `Content-Type: application/json` on every call send it with `POST .../pay`, and an empty
 * string is not JSON. The request goes on without its Content-Type, as a request without a body:
 * an optional body is then absent, a required one fails field by field.
 *
 * Strict UTF-8: the platform's `text()` turns bytes that are not UTF-8 (a stray 0xFF, a surrogate
 * encoded as UTF-8, a truncated or overlong sequence) into U+FFFD, so a name sent with them would be
 * stored altered without a word; they are refused with 400 MALFORMED_JSON (JSON is UTF-8, RFC 8259
 * section 8.1). The text is left in hono's per-request body cache, where the validators read it, so
 * the body is read once either way. Only POSTs carry JSON here. The QStash callback is left alone:
 * its body is judged by its signature alone, before anything else reads it.
 */
export function admitRequestBodies(maxBytes: number): MiddlewareHandler {
  const tooLarge = (): never => {
    throw new ApiError("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${maxBytes} bytes.`);
  };
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const readStrictJson = async (c: Context, next: Next) => {
    if (c.req.method === "POST" && !c.req.path.startsWith("/internal/")) {
      const type = c.req.header("content-type");
      if (type !== undefined && isJsonMediaType(type)) {
        await cacheStrictText(c, decoder);
      }
    }
    await next();
  };
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (!DIGITS.test(declared) || Number(declared) > maxBytes) tooLarge();
      if (Number(declared) === 0 && c.req.header("content-type") !== undefined) {
        const headers = new Headers(c.req.raw.headers);
        headers.delete("content-type");
        const { url, method, signal } = c.req.raw;
        c.req.raw = new Request(url, { method, headers, signal });
      }
      return readStrictJson(c, next);
    }
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return streamed(c, () => readStrictJson(c, next));
  };
}

async function cacheStrictText(c: Context, decoder: TextDecoder): Promise<void> {
  let bytes: ArrayBuffer;
  try {
    bytes = await c.req.arrayBuffer();
  } catch {
    throw new ApiError("MALFORMED_JSON", "The request body could not be read in full.");
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new ApiError("MALFORMED_JSON", "The request body is not valid UTF-8, so it is not JSON.");
  }
  // hono types the cache by value, but keeps (and reads back) promises of them.
  (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
}
