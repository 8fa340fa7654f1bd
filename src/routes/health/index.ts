import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { type AppDeps, createRouter, type HealthCheck } from "../router.ts";
import { json } from "../schemas.ts";

const CHECK_TIMEOUT_MS = 2_000;

const CheckResult = z.object({
  status: z.enum(["ok", "degraded", "down"]),
  required: z.boolean(),
  latencyMs: z.number(),
  detail: z.string().optional(),
});

const Health = z
  .object({ status: z.enum(["ok", "degraded", "down"]), checks: z.record(z.string(), CheckResult) })
  .openapi("Health");

const health = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Each dependency with its status and latency",
  responses: {
    200: json(Health, "Serving; `degraded` when a fallback carries the load"),
    503: json(Health, "A required dependency is down"),
  },
});

const live = createRoute({
  method: "get",
  path: "/health/live",
  tags: ["health"],
  summary: "The process answers",
  responses: { 200: json(z.object({ status: z.literal("ok") }), "Alive") },
});

const ready = createRoute({
  method: "get",
  path: "/health/ready",
  tags: ["health"],
  summary: "Ready for traffic: every required dependency answers",
  responses: { 200: json(Health, "Ready"), 503: json(Health, "Not ready") },
});

type CheckResult = z.infer<typeof CheckResult>;

async function run(check: HealthCheck): Promise<CheckResult> {
  const started = performance.now();
  const latency = () => Math.round((performance.now() - started) * 10) / 10;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([check.check(), timeout]);
    if (outcome === "ok") return { status: "ok", required: check.required, latencyMs: latency() };
    return { status: "degraded", required: check.required, latencyMs: latency(), detail: outcome.degraded };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { status: "down", required: check.required, latencyMs: latency(), detail };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: AppDeps) {
  const checks: HealthCheck[] = [
    {
      name: "database",
      required: true,
      check: async () => {
        await deps.db.execute(sql`SELECT 1`);
        return "ok";
      },
    },
    ...(deps.healthChecks ?? []),
  ];

  async function report() {
    const results = await Promise.all(checks.map(run));
    const byName = Object.fromEntries(
      checks.map((check, index) => [check.name, results[index] as CheckResult]),
    );
    const down = results.some((result) => result.required && result.status === "down");
    const degraded = results.some((result) => result.status !== "ok");
    const status = down ? ("down" as const) : degraded ? ("degraded" as const) : ("ok" as const);
    return { status, checks: byName };
  }

  return createRouter()
    .openapi(health, async (c) => {
      const body = await report();
      return body.status === "down" ? c.json(body, 503) : c.json(body, 200);
    })
    .openapi(live, (c) => c.json({ status: "ok" as const }, 200))
    .openapi(ready, async (c) => {
      const body = await report();
      return body.status === "down" ? c.json(body, 503) : c.json(body, 200);
    });
}
