import type { TokenVerifier } from "./auth/identity.ts";
import type { RateLimiter } from "./auth/rate-limit.ts";
import type { BookingDeps } from "./booking/deps.ts";

/**
 * The ports the app and its adapters share. Every layer may import this module: it holds types
 * only, so naming a logger or a health check never pulls in Hono, a driver or a runtime.
 */

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

/** One access-log line: how a request ended, with the level and message the request observer chose. */
export type AccessLine = {
  level: "debug" | "info" | "error";
  msg: string;
  requestId: string;
  method: string;
  route: string;
  status: number;
  ms: number;
};

/** The runtime's metrics exporter (prom-client on Node); where there is none, `/metrics` says so. */
export type MetricsExporter = {
  observeRequest(request: RequestObservation): void;
  render(): Promise<{ contentType: string; body: string }>;
};

export type AppDeps = BookingDeps & {
  logger: Logger;
  healthChecks?: HealthCheck[];
  /**
   * True where this process relays the outbox (Node with AMQP_URL); elsewhere `/health`'s outbox
   * entry looks for another relay (the sidecar) and names the missing one.
   */
  relayInProcess?: boolean;
  metrics?: MetricsExporter;
  /**
   * Runs the rest of a request inside a logging scope (Node: AsyncLocalStorage), so lines that
   * ports log while serving it carry its request id too, not only the lines of `c.var.logger`.
   */
  runInRequestScope?: <T>(bindings: Record<string, unknown>, run: () => Promise<T>) => Promise<T>;
  /**
   * Writes the access line where the runtime has a cheaper way than `logger` (Node: the line
   * formatted directly onto pino's stream); absent, the line goes through `logger`.
   */
  accessLog?: (line: AccessLine) => void;
  /** Bearer-token verification; absent, the service runs open (bodies and paths name the user). */
  auth?: TokenVerifier;
  /** When set, `/metrics` answers only `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Requests counted per caller and route class; absent, nothing is limited. */
  rateLimiter?: RateLimiter;
  /** The client's address for rate limits of callers without a token; from the runtime's connection. */
  clientAddress?: (request: Request, env: unknown) => string | undefined;
  /** Browser origins allowed by CORS (`*` for any); none, no CORS headers. Credentials off unless set. */
  cors?: { origins: readonly string[]; credentials: boolean };
};
