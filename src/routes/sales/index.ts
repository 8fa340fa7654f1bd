import { createRoute, z } from "@hono/zod-openapi";
import { salesHistory } from "../../booking/sales.ts";
import type { AppDeps } from "../../ports.ts";
import { bearerSecurity, guard, requireBuyer, requireSelfOrOrganiser } from "../access.ts";
import { createRouter } from "../router.ts";
import { json, ListLimit, Purchase, problems, UserId } from "../schemas.ts";

const history = createRoute({
  method: "get",
  path: "/sales/history/{userId}",
  tags: ["sales"],
  summary: "A user's confirmed purchases, newest first",
  description: "With auth on: only for that user (the token's subject) or an organiser.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "reads" })] as const,
  request: { params: z.object({ userId: UserId }), query: z.object({ limit: ListLimit }) },
  responses: {
    200: json(z.array(Purchase), "The purchases"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

const mine = createRoute({
  method: "get",
  path: "/me/sales",
  tags: ["sales"],
  summary: "The token's buyer's confirmed purchases, newest first",
  description: "Needs a bearer token; in open mode (no auth configured) there is no 'me': 401.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "reads" })] as const,
  request: { query: z.object({ limit: ListLimit }) },
  responses: {
    200: json(z.array(Purchase), "The purchases"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

export function salesRoutes(deps: AppDeps) {
  return createRouter()
    .openapi(history, async (c) => {
      const { userId } = c.req.valid("param");
      requireSelfOrOrganiser(c, userId);
      return c.json(await salesHistory(deps.db, userId, c.req.valid("query").limit), 200);
    })
    .openapi(mine, async (c) => {
      const buyer = requireBuyer(c);
      return c.json(await salesHistory(deps.db, buyer, c.req.valid("query").limit), 200);
    });
}
