import type { Context } from "hono";

/**
 * Seat maps are polled by crowds, often through a CDN: a shared cache may answer for one second,
 * then must ask again, and an unchanged map is answered 304 without a body. Not longer than a
 * second (no `stale-while-revalidate`, which would let a cache serve a map a second past that), so
 * a buyer never looks at a seat map more than a second old.
 */
export const SEAT_MAP_CACHE_CONTROL = "public, max-age=0, s-maxage=1";

/** A strong entity tag for a seat map version. */
export function entityTag(version: string): string {
  return `"${version}"`;
}

/**
 * True when the request's If-None-Match names `etag` (or is `*`); weak and strong tags compare
 * alike, as RFC 9110 prescribes for If-None-Match.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const wanted = etag.replace(/^W\//, "");
  return header
    .split(",")
    .map((tag) => tag.trim())
    .some((tag) => tag === "*" || tag.replace(/^W\//, "") === wanted);
}

/**
 * Sets the caching headers of a seat map and answers 304 when the client already has `version`;
 * undefined means the caller sends the map.
 */
export function seatMapNotModified(c: Context, version: string): Response | undefined {
  const etag = entityTag(version);
  c.header("ETag", etag);
  c.header("Cache-Control", SEAT_MAP_CACHE_CONTROL);
  if (!matchesIfNoneMatch(c.req.header("if-none-match"), etag)) return undefined;
  return c.body(null, 304);
}
