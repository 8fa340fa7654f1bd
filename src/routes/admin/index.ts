import { createRoute, z } from "@hono/zod-openapi";
import { RECONCILE_DEFAULTS, reconcile } from "../../booking/reconcile.ts";
import type { AppDeps } from "../../ports.ts";
import { bearerSecurity, guard } from "../access.ts";
import { createRouter } from "../router.ts";
import { json, problems } from "../schemas.ts";

const seconds = (fallback: number, description: string) =>
  z.coerce.number().int().min(0).max(31_536_000).default(fallback).openapi({ description });

const ReconcileReport = z
  .object({
    ok: z.boolean(),
    checkedAt: z.string(),
    options: z.object({
      outboxMaxAgeSeconds: z.number().int(),
      pendingGraceSeconds: z.number().int(),
      sampleSize: z.number().int(),
    }),
    checks: z.array(
      z.object({
        name: z.string(),
        description: z.string(),
        count: z.number().int(),
        samples: z.array(z.record(z.string(), z.unknown())),
      }),
    ),
  })
  .openapi("ReconcileReport");

const reconcileRoute = createRoute({
  method: "get",
  path: "/admin/reconcile",
  tags: ["admin"],
  summary: "Check the rows against the service's promises (what npm run reconcile reports)",
  description:
    "Organisers only when auth is on. Reads one snapshot and reports, per check, how many rows break it " +
    "and a sample of them: seats in two live claims, sales without a CONFIRMED reservation and the reverse, " +
    "sold seats without a sale or released again, claims of unpaid holds reaching past their expiry, outbox " +
    "events unpublished for too long, holds PENDING long past expiry. `ok` is false on any breach; the " +
    "answer is 200 either way.",
  security: bearerSecurity,
  middleware: [guard({ who: "organiser", limit: "reads" })] as const,
  request: {
    query: z.object({
      outboxMaxAgeSeconds: seconds(
        RECONCILE_DEFAULTS.outboxMaxAgeSeconds,
        "An unpublished event older than this is a breach",
      ),
      pendingGraceSeconds: seconds(
        RECONCILE_DEFAULTS.pendingGraceSeconds,
        "A hold still PENDING this long after its expiry is a breach",
      ),
    }),
  },
  responses: {
    200: json(ReconcileReport, "The report"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

export function adminRoutes(deps: AppDeps) {
  return createRouter().openapi(reconcileRoute, async (c) => {
    c.header("cache-control", "no-store");
    return c.json(await reconcile(deps.db, c.req.valid("query")), 200);
  });
}
