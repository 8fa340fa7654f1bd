import { createRoute, z } from "@hono/zod-openapi";
import type { AppDeps } from "../../ports.ts";
import { ApiError, problemResponse } from "../problem.ts";
import { createRouter } from "../router.ts";
import { problems } from "../schemas.ts";

const metrics = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["health"],
  summary: "Prometheus metrics of this instance (Node); 501 where the runtime collects none",
  description: "When METRICS_TOKEN is set, only `Authorization: Bearer <METRICS_TOKEN>` is answered.",
  security: [{ metricsToken: [] }],
  responses: {
    200: {
      description: "Prometheus text exposition format",
      content: { "text/plain": { schema: z.string() } },
    },
    ...problems("UNAUTHENTICATED", "METRICS_NOT_COLLECTED"),
  },
});

export function metricsRoutes(deps: AppDeps) {
  const expected = deps.metricsToken === undefined ? undefined : `Bearer ${deps.metricsToken}`;
  return createRouter().openapi(metrics, async (c) => {
    if (expected !== undefined && !sameText(c.req.header("authorization") ?? "", expected)) {
      return problemResponse(
        c,
        new ApiError("UNAUTHENTICATED", "GET /metrics needs the metrics token as a bearer token."),
        {
          "www-authenticate": 'Bearer realm="metrics"',
          "cache-control": "no-store",
        },
      ) as never;
    }
    if (!deps.metrics) {
      throw new ApiError(
        "METRICS_NOT_COLLECTED",
        "Metrics are not collected on this runtime; run the API on Node (npm start) to scrape it.",
      );
    }
    const { contentType, body } = await deps.metrics.render();
    return c.text(body, 200, { "Content-Type": contentType, "Cache-Control": "no-store" });
  });
}

/** Compares in time independent of where the texts differ, so the token cannot be guessed byte by byte. */
function sameText(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let difference = a.length ^ b.length;
  for (let index = 0; index < b.length; index++) difference |= (a[index] ?? 0) ^ (b[index] as number);
  return difference === 0;
}
