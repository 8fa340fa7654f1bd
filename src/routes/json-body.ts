import type { MiddlewareHandler } from "hono";
import { ApiError } from "./problem.ts";

/** The media types hono's JSON validator parses: application/json and application/*+json. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Reads JSON request bodies as strict UTF-8. The platform's `text()` turns bytes that are not UTF-8
 * (a stray 0xFF, a surrogate encoded as UTF-8, a truncated or overlong sequence) into U+FFFD, so a
 * name sent with them would be stored altered without a word; they are refused with 400
 * MALFORMED_JSON (JSON is UTF-8, RFC 8259 section 8.1). The text is left in hono's per-request
 * body cache, where the validators read it, so the body is read once either way.
 *
 * Only POSTs carry JSON here. The QStash callback is left alone: its body is judged by its
 * signature alone, before anything else reads it.
 */
export function strictJsonBodies(): MiddlewareHandler {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return async (c, next) => {
    if (c.req.method !== "POST" || c.req.path.startsWith("/internal/")) return next();
    const type = c.req.header("content-type");
    if (type === undefined || !JSON_MEDIA_TYPE.test(type.split(";")[0]?.trim() ?? "")) return next();
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
    return next();
  };
}
