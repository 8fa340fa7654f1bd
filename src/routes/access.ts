import type { Context, MiddlewareHandler } from "hono";
import type { Identity } from "../auth/identity.ts";
import type { RateDecision, RouteClass } from "../auth/rate-limit.ts";
import { ApiError, type Problem, type ProblemCode, problemResponse } from "./problem.ts";
import type { AppEnv } from "./router.ts";

/**
 * Who may call a route and which rate limit counts it. Every route that acts for a buyer or an
 * organiser declares it in its `createRoute({ middleware: [guard(...)] })`, so the check runs
 * before validation and the route's OpenAPI `security` says the same (`bearerSecurity`).
 *
 * - `buyer`: with auth on, a valid bearer token is required and its `sub` is the buyer;
 * - `organiser`: a valid token whose roles include `organizer`;
 * - `anyone`: no token needed; a token given is still verified (a bad one is a 401).
 * Open mode (no auth configured): nobody is asked for a token; bodies and paths name the user.
 */
export type Access = { who: "buyer" | "organiser" | "anyone"; limit?: RouteClass };

/** The OpenAPI `security` of a route that takes the bearer token. */
export const bearerSecurity = [{ bearerAuth: [] }];

const REALM = 'Bearer realm="seat-reservation"';

export function guard(rule: Access): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const access = c.get("access");
    let identity: Identity | undefined;
    if (access?.verifier) {
      const token = bearerToken(c.req.header("authorization"));
      if (token === undefined) {
        if (rule.who !== "anyone") return unauthenticated(c, "A bearer token is required.");
      } else {
        const checked = await access.verifier.verify(token);
        if (!checked.ok && checked.unavailable) {
          return problemResponse(
            c,
            problem(
              "SERVICE_UNAVAILABLE",
              "The token cannot be checked now: the signing keys did not answer. Retry shortly.",
            ),
            { "retry-after": "1" },
          );
        }
        if (!checked.ok)
          return unauthenticated(c, `The bearer token was refused: ${checked.reason}.`, checked.reason);
        identity = checked.identity;
        c.set("identity", identity);
      }
      if (rule.who === "organiser" && !identity?.organiser) {
        return problemResponse(c, problem("FORBIDDEN", "Only organisers may do this."));
      }
    }
    if (rule.limit && access?.rateLimiter) {
      const caller = identity ? `sub:${identity.sub}` : `ip:${clientAddress(c)}`;
      const decision = await access.rateLimiter.take(rule.limit, caller);
      if (decision) {
        const headers = rateLimitHeaders(rule.limit, decision);
        if (!decision.allowed) {
          return problemResponse(
            c,
            problem("RATE_LIMITED", `Too many ${rule.limit} requests; retry in ${decision.resetSeconds} s.`, {
              retryAfter: decision.resetSeconds,
            }),
            { ...headers, "retry-after": String(decision.resetSeconds) },
          );
        }
        await next();
        for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
        return;
      }
    }
    await next();
  };
}

/** The authenticated buyer's `sub`; undefined in open mode, where the body or path names the user. */
export function buyerOf(c: Context<AppEnv>): string | undefined {
  return c.get("identity")?.sub;
}

/** True for an organiser's token, and for everyone in open mode (no roles to check there). */
export function isOrganiser(c: Context<AppEnv>): boolean {
  return c.get("access")?.verifier === undefined || c.get("identity")?.organiser === true;
}

/**
 * The user a request acts for. With auth on it is the token's `sub`, and a `userId` the body
 * names must be that same user (403 otherwise); in open mode it is the body's `userId`.
 */
export function actingUser(c: Context<AppEnv>, claimed: string | undefined): string | undefined {
  const buyer = buyerOf(c);
  if (buyer === undefined) return claimed;
  if (claimed !== undefined && claimed !== buyer) {
    throw new ApiError("USER_MISMATCH", "userId must be the subject of the bearer token (or be left out).");
  }
  return buyer;
}

/** A user's own lists: that user (the token's `sub`) or an organiser; anyone in open mode. */
export function requireSelfOrOrganiser(c: Context<AppEnv>, userId: string): void {
  const buyer = buyerOf(c);
  if (buyer === undefined || buyer === userId || isOrganiser(c)) return;
  throw new ApiError("FORBIDDEN", "Only that user or an organiser may read this.");
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return match?.[1] ?? "";
}

function unauthenticated(c: Context<AppEnv>, detail: string, reason?: string): Response {
  const challenge = reason
    ? `${REALM}, error="invalid_token", error_description="${reason.replaceAll('"', "'")}"`
    : REALM;
  return problemResponse(c, problem("UNAUTHENTICATED", detail), { "www-authenticate": challenge });
}

function clientAddress(c: Context<AppEnv>): string {
  return c.get("access")?.clientAddress?.(c.req.raw, c.env) ?? "unknown";
}

/** IETF draft-ietf-httpapi-ratelimit-headers: the policy and the caller's standing in it. */
function rateLimitHeaders(routeClass: RouteClass, decision: RateDecision): Record<string, string> {
  return {
    "ratelimit-policy": `"${routeClass}";q=${decision.limit};w=${decision.windowSeconds}`,
    ratelimit: `"${routeClass}";r=${decision.remaining};t=${decision.resetSeconds}`,
  };
}

/** The token's buyer, for routes about "me": there is none in open mode (401). */
export function requireBuyer(c: Context<AppEnv>): string {
  const buyer = buyerOf(c);
  if (buyer !== undefined) return buyer;
  throw new ApiError(
    "UNAUTHENTICATED",
    "There is no signed-in buyer: auth is not configured on this instance; use the routes that name the user.",
  );
}

/** Refusals here are expected (a flood is mostly refusals): plain problems, no stack captured. */
function problem(code: ProblemCode, detail: string, extensions?: Record<string, unknown>): Problem {
  return { code, detail, extensions };
}
