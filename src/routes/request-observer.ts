import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppDeps, Logger } from "../ports.ts";
import type { AppEnv } from "./router.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
// Scrapes and orchestrator probes arrive every few seconds: logged at debug unless they fail.
const PROBES = new Set(["/metrics", "/health", "/health/live", "/health/ready"]);

/** A logger that adds `bindings` to every line, for loggers with or without pino's `child`. */
export function bindLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return {
    info: (object, message) => logger.info({ ...bindings, ...object }, message),
    warn: (object, message) => logger.warn({ ...bindings, ...object }, message),
    error: (object, message) => logger.error({ ...bindings, ...object }, message),
    debug: (object, message) => logger.debug?.({ ...bindings, ...object }, message),
  };
}

/**
 * The route template a request matched (`/reservations/:id/pay`), never its raw path, so metric
 * labels stay few. Taken from the match, not the handler that ran: a request refused by middleware
 * (body too large) still counts against its route. No route matched: `unmatched`.
 */
export function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c).filter((route) => route.method !== "ALL");
  return routes.at(-1)?.path ?? "unmatched";
}

/**
 * Runs right after `requestId()`: gives the request a logger bound to its id, then logs the request,
 * observes its duration and counts idempotent replays once the response is known.
 */
export function observeRequests(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const bindings = { requestId: c.get("requestId") };
    const logger = bindLogger(deps.logger, bindings);
    c.set("logger", logger);
    await (deps.runInRequestScope ? deps.runInRequestScope(bindings, next) : next());
    const seconds = (performance.now() - started) / 1000;
    const route = routeTemplate(c);
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const status = c.res.status;
    deps.metrics?.observeRequest({ method, route, status, seconds });
    if (c.get("replayed")) deps.telemetry?.idempotentReplay(route);
    const fields = { method: c.req.method, route, status, ms: Math.round(seconds * 1000) };
    if (status >= 500) logger.error(fields, "request failed");
    else if (PROBES.has(route) && status < 400) logger.debug?.(fields, "request");
    else logger.info(fields, "request");
  };
}
