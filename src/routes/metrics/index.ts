import { createRoute, z } from "@hono/zod-openapi";
import type { AppDeps } from "../../ports.ts";
import { ApiError } from "../problem.ts";
import { createRouter } from "../router.ts";
import { Problem } from "../schemas.ts";

const metrics = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["health"],
  summary: "Prometheus metrics of this instance (Node); 501 where the runtime collects none",
  responses: {
    200: {
      description: "Prometheus text exposition format",
      content: { "text/plain": { schema: z.string() } },
    },
    501: {
      description: "This runtime collects no metrics",
      content: { "application/problem+json": { schema: Problem } },
    },
  },
});

export function metricsRoutes(deps: AppDeps) {
  return createRouter().openapi(metrics, async (c) => {
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
