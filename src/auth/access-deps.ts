import type { Config } from "../env.ts";
import type { AppDeps } from "../ports.ts";
import { createJwtVerifier } from "./jwt-verifier.ts";
import { createMemoryRateLimiter, type RateLimiter, type RateRules } from "./rate-limit.ts";

export type AccessDeps = Pick<AppDeps, "auth" | "metricsToken" | "rateLimiter" | "clientAddress" | "cors">;

/**
 * Auth, rate limits, CORS and the metrics token of one instance, from its configuration. Every
 * entry builds them here; `sharedLimiter` (Redis or Upstash) counts across instances, and memory
 * counts for this instance alone when there is none. `connectionAddress` is the runtime's view of
 * the peer; a configured proxy header (CLIENT_IP_HEADER) takes precedence.
 */
export function accessDeps(
  config: Config,
  options: {
    sharedLimiter?: (rules: RateRules) => RateLimiter;
    connectionAddress?: (request: Request, env: unknown) => string | undefined;
  } = {},
): AccessDeps {
  const { rateLimits, clientIpHeader } = config;
  const rateLimiter = rateLimits
    ? (options.sharedLimiter?.(rateLimits) ?? createMemoryRateLimiter(rateLimits))
    : undefined;
  const connectionAddress = options.connectionAddress;
  const clientAddress = (request: Request, env: unknown) => {
    if (clientIpHeader) {
      const value = request.headers.get(clientIpHeader);
      const last = value?.split(",").at(-1)?.trim();
      if (last) return last;
    }
    return connectionAddress?.(request, env);
  };
  return {
    auth: config.auth ? createJwtVerifier(config.auth) : undefined,
    metricsToken: config.metricsToken,
    rateLimiter,
    clientAddress,
    cors: config.cors,
  };
}
