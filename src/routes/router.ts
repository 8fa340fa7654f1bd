import { OpenAPIHono } from "@hono/zod-openapi";
import type { BookingDeps } from "../booking/deps.ts";
import { ApiError } from "./problem.ts";

export type Logger = {
  info(object: Record<string, unknown>, message?: string): void;
  warn(object: Record<string, unknown>, message?: string): void;
  error(object: Record<string, unknown>, message?: string): void;
  debug?(object: Record<string, unknown>, message?: string): void;
};

/** A dependency `/health` reports on. `check` throws (or rejects) when the dependency is down. */
export type HealthCheck = {
  name: string;
  required: boolean;
  check: () => Promise<"ok" | { degraded: string }>;
};

export type RequestObservation = { method: string; route: string; status: number; seconds: number };

/** The runtime's metrics exporter (prom-client on Node); where there is none, `/metrics` says so. */
export type MetricsExporter = {
  observeRequest(request: RequestObservation): void;
  render(): Promise<{ contentType: string; body: string }>;
};

export type AppDeps = BookingDeps & {
  logger: Logger;
  healthChecks?: HealthCheck[];
  metrics?: MetricsExporter;
  /**
   * Runs the rest of a request inside a logging scope (Node: AsyncLocalStorage), so lines that
   * ports log while serving it carry its request id too, not only the lines of `c.var.logger`.
   */
  runInRequestScope?: <T>(bindings: Record<string, unknown>, run: () => Promise<T>) => Promise<T>;
};

/**
 * `logger` is the app's logger bound to the request id: every line it writes names the request.
 * `replayed` is set when the answer is an idempotent replay.
 */
export type AppEnv = { Variables: { requestId: string; logger: Logger; replayed?: boolean } };

/** Every router of the app: validation failures become the same problem envelope as every other error. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const errors = result.error.issues.map((issue) => ({
        path: issue.path.map(String).join("."),
        message: issue.message,
      }));
      const summary = errors.map((error) => (error.path ? `${error.path}: ${error.message}` : error.message));
      throw new ApiError("VALIDATION_FAILED", summary.join("; "), { errors });
    },
  });
}
