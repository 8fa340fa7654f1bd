import type { Context } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { isInputRejected, isUnavailable } from "./db/errors.ts";
import type { AppDeps } from "./ports.ts";
import { adminRoutes } from "./routes/admin/index.ts";
import { docsRoutes } from "./routes/docs/index.ts";
import { healthRoutes } from "./routes/health/index.ts";
import { internalRoutes } from "./routes/internal/index.ts";
import { metricsRoutes } from "./routes/metrics/index.ts";
import { ApiError, invalidInput, problemResponse } from "./routes/problem.ts";
import { admitRequestBodies } from "./routes/request-body.ts";
import { observeRequests } from "./routes/request-observer.ts";
import { reservationRoutes } from "./routes/reservations/index.ts";
import { createRouter } from "./routes/router.ts";
import { salesRoutes } from "./routes/sales/index.ts";
import { sessionRoutes } from "./routes/sessions/index.ts";
import { webRoutes } from "./routes/web/index.ts";

export type { AppDeps } from "./ports.ts";

export const MAX_BODY_BYTES = 64 * 1024;

/** The OpenAPI document's tags; every operation carries one of them. */
export const API_TAGS = [
  { name: "sessions", description: "Sessions and their seat maps" },
  { name: "reservations", description: "Holds: create, read, extend, release, pay, cancel" },
  { name: "sales", description: "Confirmed purchases" },
  { name: "health", description: "Health, readiness and metrics" },
  { name: "admin", description: "Checks for operators and organisers" },
  { name: "internal", description: "Callbacks from the platform (QStash), not for clients" },
  { name: "web", description: "The seat-map web page" },
];

/** Builds the whole API from its dependencies. Opens nothing and reads no environment. */
export function createApp(deps: AppDeps) {
  const app = createRouter();

  // CORS sits between the two so that preflights are answered before any body is read and every
  // refusal of a body (413, 400) still carries the CORS headers a browser needs to read it.
  app.use(observeRequests(deps));
  if (deps.cors && deps.cors.origins.length > 0) app.use(corsFor(deps.cors));
  app.use(admitRequestBodies(MAX_BODY_BYTES));

  app.route("/", sessionRoutes(deps));
  app.route("/", reservationRoutes(deps));
  app.route("/", salesRoutes(deps));
  app.route("/", healthRoutes(deps));
  app.route("/", metricsRoutes(deps));
  app.route("/", internalRoutes(deps));
  app.route("/", adminRoutes(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: deps.auth
      ? "A JWT whose `sub` is the buyer; organisers carry the `organizer` role."
      : "Auth is not configured on this instance (open mode): no token is needed.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "metricsToken", {
    type: "http",
    scheme: "bearer",
    description: "METRICS_TOKEN, when the instance sets one.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Seat reservation API",
      version: "1.0.0",
      description: "Hold seats, pay, and never sell a seat twice.",
    },
    tags: API_TAGS,
  });
  app.route("/", docsRoutes());
  app.route("/", webRoutes());

  app.notFound((c) =>
    problemResponse(c, new ApiError("NOT_FOUND", `No route for ${c.req.method} ${c.req.path}.`)),
  );
  app.onError((error, c) => renderError(error, c, deps));
  return app;
}

/**
 * CORS for browser clients of CORS_ORIGINS: preflights answered before any other work, the
 * headers a client sends (bearer token, idempotency key) allowed, those it reads exposed.
 * Credentials (cookies) are off unless configured: the API authenticates by bearer token.
 */
function corsFor(options: { origins: readonly string[]; credentials: boolean }) {
  return cors({
    origin: options.origins.includes("*") ? "*" : [...options.origins],
    credentials: options.credentials,
    allowMethods: ["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
    allowHeaders: [
      "Authorization",
      "Content-Type",
      "Idempotency-Key",
      "If-None-Match",
      "Last-Event-ID",
      "X-Request-Id",
    ],
    exposeHeaders: [
      "ETag",
      "Idempotent-Replayed",
      "Retry-After",
      "RateLimit",
      "RateLimit-Policy",
      "WWW-Authenticate",
      "X-Request-Id",
    ],
    maxAge: 600,
  });
}

function renderError(error: Error, c: Context, deps: AppDeps): Response {
  if (error instanceof ApiError) return problemResponse(c, error);
  if (error instanceof HTTPException) {
    if (error.status === 415) {
      return problemResponse(
        c,
        new ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json."),
      );
    }
    if (error.status === 413) return problemResponse(c, new ApiError("PAYLOAD_TOO_LARGE", error.message));
    if (error.status === 400 && /json/i.test(error.message)) {
      return problemResponse(c, new ApiError("MALFORMED_JSON", "The request body is not valid JSON."));
    }
    if (error.status < 500) return problemResponse(c, invalidInput("", error.message));
  }
  const requestIdValue = c.get("requestId");
  if (isUnavailable(error)) {
    deps.logger.warn({ requestId: requestIdValue, err: describe(error) }, "dependency unavailable");
    return problemResponse(
      c,
      new ApiError(
        "SERVICE_UNAVAILABLE",
        "The database is unavailable. Retry shortly, with the same Idempotency-Key if you sent one: a change whose commit was cut off is then replayed, never made twice.",
      ),
      { "retry-after": "1" },
    );
  }
  if (isInputRejected(error)) {
    // A validation gap, not an outage: the client gets a 400, the log keeps the database's words.
    deps.logger.warn({ requestId: requestIdValue, err: describe(error) }, "database refused a request value");
    return problemResponse(
      c,
      invalidInput("", "A value in this request is not one the service can store; nothing was changed."),
    );
  }
  deps.logger.error({ requestId: requestIdValue, err: describe(error) }, "unhandled error");
  return problemResponse(
    c,
    new ApiError("INTERNAL_ERROR", "Something went wrong; the request id identifies it."),
  );
}

function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    cause: error.cause && describe(error.cause),
  };
}
