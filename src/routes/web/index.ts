import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../router.ts";
import { pageHtml } from "./page.ts";
import { webAssets } from "./web-assets.ts";

const SCRIPT_PATH = "/app.js";

/** The page loads nothing from elsewhere; its one script is ours, its styles inline. */
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const page = createRoute({
  method: "get",
  path: "/",
  tags: ["web"],
  summary: "The seat-map web page",
  description:
    "Sessions, a live seat map coloured by status and category, holds (chosen seats or the best N) " +
    "with a countdown, extension, payment and cancellation, and a form for organisers. It uses the " +
    "public API only, with a bearer token when auth is on.",
  responses: { 200: { description: "HTML", content: { "text/html": { schema: z.string() } } } },
});

const script = createRoute({
  method: "get",
  path: SCRIPT_PATH,
  tags: ["web"],
  summary: "The web page's script (bundled at build time)",
  request: { query: z.object({ v: z.string().max(64).optional() }) },
  responses: { 200: { description: "JavaScript", content: { "text/javascript": { schema: z.string() } } } },
});

export function webRoutes() {
  const html = pageHtml(`${SCRIPT_PATH}?v=${webAssets.version}`);
  return createRouter()
    .openapi(page, (c) =>
      c.body(html, 200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy": PAGE_POLICY,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      }),
    )
    .openapi(script, (c) =>
      c.body(webAssets.script, 200, {
        "content-type": "text/javascript; charset=utf-8",
        // The page names the script by its digest: that URL's content never changes.
        "cache-control":
          c.req.valid("query").v === webAssets.version ? "public, max-age=31536000, immutable" : "no-cache",
        "x-content-type-options": "nosniff",
      }),
    );
}
