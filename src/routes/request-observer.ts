import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AccessLine, AppDeps, Logger } from "../ports.ts";
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

/** hono's `requestId()` rule: a client's id is kept when it is 1-255 characters of `[\w\-=]`. */
const CLIENT_REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * The first middleware of every request, doing in one layer what five did (each layer is a closure
 * and a promise per request, and a refused hold is mostly such per-request work): names the request
 * (`X-Request-Id`: the client's, or a new uuid), gives it a logger bound to that id and the access
 * pieces its route guard reads, runs the rest inside the request's logging scope, then observes its
 * duration, counts idempotent replays and writes its access line once the response is known.
 */
export function observeRequests(deps: AppDeps): MiddlewareHandler<AppEnv> {
  const access = { verifier: deps.auth, rateLimiter: deps.rateLimiter, clientAddress: deps.clientAddress };
  const writeAccessLine =
    deps.accessLog ?? (({ level, msg, ...fields }: AccessLine) => deps.logger[level]?.(fields, msg));
  return async (c, next) => {
    const started = performance.now();
    const sent = c.req.header("x-request-id");
    const requestId = sent !== undefined && CLIENT_REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    c.set("access", access);
    const bindings = { requestId };
    c.set("logger", bindLogger(deps.logger, bindings));
    await (deps.runInRequestScope ? deps.runInRequestScope(bindings, next) : next());
    const seconds = (performance.now() - started) / 1000;
    const route = routeTemplate(c);
    const method = c.req.method;
    const status = c.res.status;
    deps.metrics?.observeRequest({ method: METHODS.has(method) ? method : "OTHER", route, status, seconds });
    if (c.get("replayed")) deps.telemetry?.idempotentReplay(route);
    const failed = status >= 500;
    writeAccessLine({
      level: failed ? "error" : PROBES.has(route) && status < 400 ? "debug" : "info",
      msg: failed ? "request failed" : "request",
      requestId,
      method,
      route,
      status,
      ms: Math.round(seconds * 1000),
    });
  };
}
