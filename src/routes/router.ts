import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { Identity, TokenVerifier } from "../auth/identity.ts";
import type { RateLimiter } from "../auth/rate-limit.ts";
import type { AppDeps, Logger } from "../ports.ts";
import { ApiError } from "./problem.ts";
import { isJsonMediaType } from "./request-body.ts";

/**
 * `logger` is the app's logger bound to the request id: every line it writes names the request.
 * `replayed` is set when the answer is an idempotent replay.
 */
export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    replayed?: boolean;
    /** Set by `observeRequests`; `identity` by a route's `guard` once its bearer token verified. */
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

type Check = (c: Context<AppEnv>) => void;

/** A route's params, query or headers checked with its schema; only the declared headers are read. */
function checkTarget(target: Target, schema: z.ZodObject): Check {
  const headerNames = target === "header" ? Object.keys(schema.shape) : [];
  return (c) => {
    const result = schema.safeParse(readTarget(c, target, headerNames));
    if (!result.success) validationFailed(result.error.issues);
    c.req.addValidatedData(target, result.data as Record<string, string>);
  };
}

/** zod-openapi's rules for a declared JSON request body, which this replaces. */
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;
const IS_JSON = /^application\/([a-z-.]+\+)?json/i;

function unsupportedMediaType(): never {
  throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.");
}

/** True when a request without a Content-Type still sends bytes (zod-openapi's `hasRequestBody`). */
async function sendsBytes(c: Context<AppEnv>): Promise<boolean> {
  const raw = c.req.raw;
  if (raw.body === null) return false;
  if (raw.bodyUsed) return (await c.req.arrayBuffer()).byteLength > 0;
  const reader = raw.clone().body?.getReader();
  if (!reader) return false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      if (value.byteLength > 0) return true;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * A route's JSON body checked with its schema, with zod-openapi's semantics: a Content-Type that is
 * not JSON is 415, and so is a body sent without one; an optional body may be absent (`{}`); a
 * required one is validated as sent, or as `{}` when there is none. The text is the one the body
 * admission cached (strict UTF-8), parsed once; the schema runs synchronously.
 */
function checkJsonBody(schema: z.ZodType, required: boolean) {
  return async (c: Context<AppEnv>): Promise<void> => {
    const type = c.req.header("content-type");
    if (type !== undefined ? !JSON_REQUEST.test(type) : await sendsBytes(c)) unsupportedMediaType();
    let value: unknown = {};
    if (type !== undefined && (required || IS_JSON.test(type))) {
      if (isJsonMediaType(type)) {
        const text = await c.req.text();
        try {
          value = JSON.parse(text);
        } catch {
          throw new ApiError("MALFORMED_JSON", "The request body is not valid JSON.");
        }
      }
    } else if (!required) {
      c.req.addValidatedData("json", {});
      return;
    }
    const result = schema.safeParse(value);
    if (!result.success) validationFailed(result.error.issues);
    c.req.addValidatedData("json", result.data as Record<string, unknown>);
  };
}

type BodyDeclaration = { required?: boolean; content?: Record<string, { schema?: unknown }> };

/** The JSON body schema of a route whose only declared body is application/json; else undefined. */
function jsonBodyOf(body: BodyDeclaration | undefined): z.ZodType | undefined {
  const content = body?.content;
  if (!content) return undefined;
  const types = Object.keys(content);
  const schema = content["application/json"]?.schema;
  return types.length === 1 && schema instanceof z.ZodType ? schema : undefined;
}

/**
 * Every check of a route's request in one middleware, built once per route, in zod-openapi's order
 * (query, params, headers, then the body). zod-openapi's own validators are one layer each, parse
 * asynchronously, read a JSON body through a second web Response, and its header validator reads
 * every header of the request (`c.req.header()`), which makes @hono/node-server build a full web
 * `Headers`; these read only what the schemas declare, parse synchronously (our schemas have no
 * async refinements), and hand the handler the same data (`c.req.valid(...)`).
 */
function validateRequest(checks: readonly Check[], body?: (c: Context<AppEnv>) => Promise<void>) {
  const middleware: MiddlewareHandler<AppEnv> = async (c, next) => {
    for (const check of checks) check(c);
    if (body) await body(c);
    await next();
  };
  return middleware;
}

/** Every router of the app: validation failures become the same problem envelope as every other error. */
export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) validationFailed(result.error.issues);
    },
  });
  // The route goes into the document as declared; its request is checked by `validateRequest`.
  const openapi = router.openapi;
  router.openapi = ((route, handler, hook) => {
    const { query, params, headers, body, ...rest } = route.request ?? {};
    const targets: [Target, unknown][] = [
      ["query", query],
      ["param", params],
      ["header", headers],
    ];
    const declaredTargets = targets.filter(([, schema]) => schema !== undefined);
    const jsonBody = jsonBodyOf(body as BodyDeclaration | undefined);
    const ours =
      hook === undefined &&
      Object.keys(rest).length === 0 &&
      (body === undefined || jsonBody !== undefined) &&
      declaredTargets.every(([, schema]) => schema instanceof z.ZodObject);
    if (!ours || (declaredTargets.length === 0 && body === undefined)) return openapi(route, handler, hook);
    const { middleware, hide, ...declared } = route;
    if (!hide) router.openAPIRegistry.registerPath(declared);
    const checks = declaredTargets.map(([target, schema]) => checkTarget(target, schema as z.ZodObject));
    const bodyCheck = jsonBody && checkJsonBody(jsonBody, (body as BodyDeclaration).required === true);
    const routeMiddleware =
      middleware === undefined ? [] : Array.isArray(middleware) ? middleware : [middleware];
    return openapi(
      {
        ...declared,
        request: undefined,
        middleware: [...routeMiddleware, validateRequest(checks, bodyCheck)],
        hide: true,
      },
      handler,
    );
  }) as typeof router.openapi;
  return router;
}
