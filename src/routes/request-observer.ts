import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppDeps, Logger } from "../ports.ts";
import type { AppEnv } from "./router.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
// Scrapes and orchestrator probes arrive every few seconds: logged at debug unless they fail.
const PROBES = new Set(["/metrics", "/health", "/health/live", "/health/ready"]);

/** A logger that adds `bindings` to every line, for loggers with or without pino's `child`. */
export function bindLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return new BoundLogger(logger, bindings);
}

// One object per request with its methods on the prototype, not four closures per request.
class BoundLogger implements Logger {
  readonly #logger: Logger;
  readonly #bindings: Record<string, unknown>;

  constructor(logger: Logger, bindings: Record<string, unknown>) {
    this.#logger = logger;
    this.#bindings = bindings;
  }

  info(object: Record<string, unknown>, message?: string): void {
    this.#logger.info({ ...this.#bindings, ...object }, message);
  }

  warn(object: Record<string, unknown>, message?: string): void {
    this.#logger.warn({ ...this.#bindings, ...object }, message);
  }

  error(object: Record<string, unknown>, message?: string): void {
    this.#logger.error({ ...this.#bindings, ...object }, message);
  }

  debug(object: Record<string, unknown>, message?: string): void {
    this.#logger.debug?.({ ...this.#bindings, ...object }, message);
  }
}

/**
 * The route template a request matched (`/reservations/:id/pay`), never its raw path, so metric
 * labels stay few. Taken from the match, not the handler that ran: a request refused by middleware
 * (body too large) still counts against its route. No route matched: `unmatched`.
 */
export function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i] as (typeof routes)[number];
    if (route.method !== "ALL") return route.path;
  }
  return "unmatched";
}

/**
 * Runs right after `requestId()`: gives the request a logger bound to its id, then logs the request,
 * observes its duration and counts idempotent replays once the response is known.
 */
export function observeRequests(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const requestId = c.get("requestId");
    const bindings = { requestId };
    const logger = bindLogger(deps.logger, bindings);
    c.set("logger", logger);
    await (deps.runInRequestScope ? deps.runInRequestScope(bindings, next) : next());
    const seconds = (performance.now() - started) / 1000;
    const route = routeTemplate(c);
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const status = c.res.status;
    deps.metrics?.observeRequest({ method, route, status, seconds });
    if (c.get("replayed")) deps.telemetry?.idempotentReplay(route);
    // The access line names its request itself: one object, not bindings spread into fields.
    const fields = { requestId, method: c.req.method, route, status, ms: Math.round(seconds * 1000) };
    if (status >= 500) deps.logger.error(fields, "request failed");
    else if (PROBES.has(route) && status < 400) deps.logger.debug?.(fields, "request");
    else deps.logger.info(fields, "request");
  };
}
