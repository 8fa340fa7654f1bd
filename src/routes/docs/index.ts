import { ApiError } from "../problem.ts";
import { createRouter } from "../router.ts";

/**
 * Swagger UI at /api-docs, served by the app itself from the pinned swagger-ui-dist (bundled as
 * strings by scripts/swagger-ui-assets.ts): it works offline and on every runtime, with no CDN and
 * no file read at run time. The assets load on the first visit, not at start-up, and their path
 * carries the version, so browsers may keep them for good.
 */
const loadSwaggerUi = () => import("./swagger-ui-assets.ts").then((module) => module.swaggerUi);

const IMMUTABLE = "public, max-age=31536000, immutable";

function page(version: string): string {
  const base = `/api-docs/${version}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Seat reservation API</title>
<link rel="stylesheet" href="${base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${base}/swagger-ui-bundle.js"></script>
<script src="${base}/init.js"></script>
</body>
</html>
`;
}

// No validator badge: it would send the document to validator.swagger.io.
const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });\n`;

export function docsRoutes() {
  const router = createRouter();

  router.get("/api-docs", async (c) => c.html(page((await loadSwaggerUi()).version), 200));

  router.get("/api-docs/:version/:file", async (c) => {
    const swaggerUi = await loadSwaggerUi();
    const assets: Record<string, [string, string]> = {
      "swagger-ui.css": [swaggerUi.css, "text/css; charset=utf-8"],
      "swagger-ui-bundle.js": [swaggerUi.bundle, "text/javascript; charset=utf-8"],
      "init.js": [INIT, "text/javascript; charset=utf-8"],
    };
    const asset = assets[c.req.param("file")];
    if (c.req.param("version") !== swaggerUi.version || !asset) {
      throw new ApiError("NOT_FOUND", `No Swagger UI asset ${c.req.path}.`);
    }
    return c.body(asset[0], 200, { "content-type": asset[1], "cache-control": IMMUTABLE });
  });

  return router;
}
