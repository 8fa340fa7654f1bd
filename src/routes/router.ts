import { OpenAPIHono } from "@hono/zod-openapi";
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
