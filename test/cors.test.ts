import { describe, expect, it } from "vitest";
import { parseEnv } from "../src/env.ts";
import { useTestApp } from "./support/app.ts";

describe("CORS for browser clients", () => {
  const suite = useTestApp("pglite", {
    overrides: { cors: { origins: ["https://app.example.com"], credentials: false } },
  });
  const open = useTestApp("pglite");

  it("answers a preflight from an allowed origin with the methods and headers a client sends", async () => {
    const preflight = await suite.app.request("/reservations", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, idempotency-key",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("idempotency-key");
    expect(preflight.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("names the allowed origin on answers, errors included, and no other origin", async () => {
    const allowed = await suite.app.request("/sessions", { headers: { origin: "https://app.example.com" } });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-expose-headers")).toContain("RateLimit");
    const missing = await suite.app.request(`/sessions/${crypto.randomUUID()}`, {
      headers: { origin: "https://app.example.com" },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const other = await suite.app.request("/sessions", { headers: { origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("sends no CORS headers when CORS_ORIGINS is not set", async () => {
    const answer = await open.app.request("/sessions", { headers: { origin: "https://app.example.com" } });
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("parses CORS_ORIGINS and refuses what is not an origin", () => {
    expect(parseEnv({ CORS_ORIGINS: "https://a.example, http://localhost:5173" }).cors).toEqual({
      origins: ["https://a.example", "http://localhost:5173"],
      credentials: false,
    });
    expect(() => parseEnv({ CORS_ORIGINS: "https://a.example/path" })).toThrow(/CORS_ORIGINS/);
    expect(() => parseEnv({ CORS_ORIGINS: "*", CORS_CREDENTIALS: "true" })).toThrow(/CORS_CREDENTIALS/);
  });
});

describe("auth and rate-limit configuration", () => {
  it("is open (and unlimited) without auth variables, limited by default with them", () => {
    const open = parseEnv({});
    expect(open.auth).toBeUndefined();
    expect(open.rateLimits).toBeUndefined();
    const secured = parseEnv({ AUTH_JWT_SECRET: "x".repeat(32), RATE_LIMIT_SESSIONS: "0" });
    expect(secured.auth).toMatchObject({ secret: "x".repeat(32), rolesClaim: "roles", clockSkewSeconds: 30 });
    expect(secured.rateLimits).toMatchObject({
      holds: { limit: 30, windowSeconds: 60 },
      sessions: undefined,
    });
  });

  it("names the variable of a bad setting", () => {
    expect(() => parseEnv({ AUTH_JWT_SECRET: "short" })).toThrow(/AUTH_JWT_SECRET/);
    expect(() => parseEnv({ AUTH_JWKS_URL: "ftp://keys" })).toThrow(/AUTH_JWKS_URL/);
    expect(() => parseEnv({ AUTH_JWKS_URL: "https://a/jwks", AUTH_JWT_SECRET: "x".repeat(32) })).toThrow(
      /set one of them/,
    );
    expect(() => parseEnv({ METRICS_TOKEN: "short" })).toThrow(/METRICS_TOKEN/);
    expect(() => parseEnv({ RATE_LIMITS: "maybe" })).toThrow(/RATE_LIMITS/);
  });
});
