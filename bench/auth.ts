import { createHmac } from "node:crypto";
import type { BenchAuth } from "./load.ts";

const SECRET = "bench-only-secret-of-at-least-32-characters";
const ORGANISER = "bench-organiser";

/**
 * `BENCH_AUTH=1`: the service runs with HS256 bearer tokens and rate limits counted in Redis
 * (limits set far above the load, so nothing is refused and the counting cost is measured). The
 * load generator mints each user's token once with Node's HMAC, cheaply, since it shares the
 * machine with the service; the service verifies them with jose like any other token.
 */
export function benchAuth(): { serviceEnv: Record<string, string>; client: BenchAuth; description: string } {
  const unlimited = "1000000000";
  return {
    serviceEnv: {
      AUTH_JWT_SECRET: SECRET,
      RATE_LIMITS: "on",
      RATE_LIMIT_HOLDS: unlimited,
      RATE_LIMIT_PAYMENTS: unlimited,
      RATE_LIMIT_SESSIONS: unlimited,
      RATE_LIMIT_READS: unlimited,
    },
    client: { tokenFor: async (sub) => sign(sub), organiser: ORGANISER },
    description:
      "every request carries an HS256 bearer token (verified once per token, then from the memo); rate limits counted in Redis, never refusing",
  };
}

function sign(sub: string): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const roles = sub === ORGANISER ? ["organizer"] : [];
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub, roles, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}
