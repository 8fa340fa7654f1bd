import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { withDeadline } from "../../deadline.ts";
import { outboxHealthCheck } from "../../events/relay-health.ts";
import type { AppDeps, HealthCheck } from "../../ports.ts";
import { createRouter } from "../router.ts";
import { json } from "../schemas.ts";

const CHECK_TIMEOUT_MS = 2_000;
/** Always named in the report; one without a check (not configured on this instance) reads `disabled`. */
const DEPENDENCIES = ["database", "outbox", "redis", "rabbitmq", "memory"] as const;

const CheckResult = z.object({
  status: z.enum(["ok", "degraded", "down", "disabled"]),
  required: z.boolean(),
  latencyMs: z.number(),
  detail: z.string().optional(),
});

const Health = z
  .object({
    status: z.enum(["ok", "degraded", "down"]),
    checks: z.record(z.string(), CheckResult),
    auth: z
      .enum(["enabled", "disabled"])
      .openapi({ description: "`disabled`: open mode, for local use only" }),
  })
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
  try {
    const outcome = await withDeadline(check.check(), CHECK_TIMEOUT_MS, "no answer");
    if (outcome === "ok") return { status: "ok", required: check.required, latencyMs: latency() };
    return { status: "degraded", required: check.required, latencyMs: latency(), detail: outcome.degraded };
  } catch (error) {
    return { status: "down", required: check.required, latencyMs: latency(), detail: rootCause(error) };
  }
}

/** The innermost message: drizzle wraps driver errors in "Failed query: ...", which says nothing. */
function rootCause(error: unknown): string {
  let message = String(error);
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (!(current instanceof Error)) break;
    const code = (current as { code?: unknown }).code;
    if (current.message) message = current.message;
    else if (typeof code === "string") message = code;
    current = current.cause;
  }
  return message;
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
    // `deps.db` is read at each check: on Workers it is the database of the request being served.
    outboxHealthCheck(() => deps.db, { relayInProcess: deps.relayInProcess ?? false }),
    ...(deps.healthChecks ?? []),
  ];

  const auth = deps.auth ? ("enabled" as const) : ("disabled" as const);
  const disabled: CheckResult = {
    status: "disabled",
    required: false,
    latencyMs: 0,
    detail: "not configured",
  };

  /** `down` when a required dependency is down; `degraded` when an optional one is not `ok`. */
  async function report() {
    const results = await Promise.all(checks.map(run));
    const byName: Record<string, CheckResult> = Object.fromEntries(
      DEPENDENCIES.map((name) => [name, disabled]),
    );
    checks.forEach((check, index) => {
      byName[check.name] = results[index] as CheckResult;
    });
    const down = results.some((result) => result.required && result.status === "down");
    const degraded = results.some((result) => result.status !== "ok");
    const status = down ? ("down" as const) : degraded ? ("degraded" as const) : ("ok" as const);
    return { status, checks: byName, auth };
  }

  const noStore = { "cache-control": "no-store" };
  return createRouter()
    .openapi(health, async (c) => {
      const body = await report();
      return body.status === "down" ? c.json(body, 503, noStore) : c.json(body, 200, noStore);
    })
    .openapi(live, (c) => c.json({ status: "ok" as const }, 200, noStore))
    .openapi(ready, async (c) => {
      const body = await report();
      return body.status === "down" ? c.json(body, 503, noStore) : c.json(body, 200, noStore);
    });
}
