import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { Identity, TokenVerifier } from "../auth/identity.ts";
import type { RateLimiter } from "../auth/rate-limit.ts";
import type { AppDeps, Logger } from "../ports.ts";
import { ApiError } from "./problem.ts";

/**
 * `logger` is the app's logger bound to the request id: every line it writes names the request.
 * `replayed` is set when the answer is an idempotent replay.
 */
export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    replayed?: boolean;
    /** Set by `provideAccess`; `identity` by a route's `guard` once its bearer token verified. */
    access?: Pick<AppDeps, "clientAddress"> & { verifier?: TokenVerifier; rateLimiter?: RateLimiter };
    identity?: Identity;
  };
};

type Issue = { path: PropertyKey[]; message: string };

/** A failed validation as the problem every error of the API answers with. */
function validationFailed(issues: readonly Issue[]): never {
  const errors = issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
  const summary = errors.map((error) => (error.path ? `${error.path}: ${error.message}` : error.message));
  throw new ApiError("VALIDATION_FAILED", summary.join("; "), { errors });
}

type Target = "query" | "param" | "header";

/** What hono's `validator(target)` hands its schema, taken without materialising every header. */
function readTarget(
  c: Context<AppEnv>,
  target: Target,
  headerNames: readonly string[],
): Record<string, unknown> {
  if (target === "param") return c.req.param() as Record<string, string>;
  if (target === "query") {
    const query: Record<string, string | string[]> = {};
    for (const [key, values] of Object.entries(c.req.queries()))
      query[key] = values.length === 1 ? (values[0] as string) : values;
    return query;
  }
  const headers: Record<string, string> = {};
  for (const name of headerNames) {
    const value = c.req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

/**
 * A route's params, query or headers validated with its schema, built once per route. zod-openapi's
 * own validators parse asynchronously, and its header validator reads every header of the request
 * (`c.req.header()`), which makes @hono/node-server build a full web `Headers` on every request;
 * this one looks up only the header names the schema declares, parses synchronously (our schemas
 * have no async refinements), and hands the handler the same data.
 */
function validate(target: Target, schema: z.ZodObject): MiddlewareHandler<AppEnv> {
  const headerNames = target === "header" ? Object.keys(schema.shape) : [];
  return async (c, next) => {
    const result = schema.safeParse(readTarget(c, target, headerNames));
    if (!result.success) validationFailed(result.error.issues);
    c.req.addValidatedData(target, result.data as Record<string, string>);
    await next();
  };
}

/** Every router of the app: validation failures become the same problem envelope as every other error. */
export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) validationFailed(result.error.issues);
    },
  });
  // The route goes into the document as declared; its params, query and headers are checked by
  // `validate`, in zod-openapi's order (query, params, headers, then the body, which it keeps).
  const openapi = router.openapi;
  router.openapi = ((route, handler, hook) => {
    const { query, params, headers, ...rest } = route.request ?? {};
    const checks: [Target, unknown][] = [
      ["query", query],
      ["param", params],
      ["header", headers],
    ];
    const ours = checks.filter(([, schema]) => schema !== undefined);
    if (hook || ours.length === 0 || !ours.every(([, schema]) => schema instanceof z.ZodObject)) {
      return openapi(route, handler, hook);
    }
    const { middleware, hide, ...declared } = route;
    if (!hide) router.openAPIRegistry.registerPath(declared);
    const validators = ours.map(([target, schema]) => validate(target, schema as z.ZodObject));
    const routeMiddleware =
      middleware === undefined ? [] : Array.isArray(middleware) ? middleware : [middleware];
    return openapi(
      { ...declared, request: rest, middleware: [...routeMiddleware, ...validators], hide: true },
      handler,
    );
  }) as typeof router.openapi;
  return router;
}
