import { createRoute, z } from "@hono/zod-openapi";
import { salesHistory } from "../../booking/sales.ts";
import type { AppDeps } from "../../ports.ts";
import { createRouter } from "../router.ts";
import { json, ListLimit, Purchase, problems, UserId } from "../schemas.ts";

const history = createRoute({
  method: "get",
  path: "/sales/history/{userId}",
  tags: ["sales"],
  summary: "A user's confirmed purchases, newest first",
  request: { params: z.object({ userId: UserId }), query: z.object({ limit: ListLimit }) },
  responses: { 200: json(z.array(Purchase), "The purchases"), ...problems(400) },
});

export function salesRoutes(deps: AppDeps) {
  return createRouter().openapi(history, async (c) => {
    const { userId } = c.req.valid("param");
    return c.json(await salesHistory(deps.db, userId, c.req.valid("query").limit), 200);
  });
}
