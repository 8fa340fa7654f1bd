import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { type Identity, ORGANISER_ROLE, type TokenCheck, type TokenVerifier } from "./identity.ts";

export type AuthConfig = {
  /** A JWKS endpoint (Auth0, Clerk, Cognito, Supabase, Cloudflare Access); or `secret` for HS256. */
  jwksUrl?: string;
  secret?: string;
  issuer?: string;
  audience?: string;
  rolesClaim: string;
  clockSkewSeconds: number;
};

export type VerifierOptions = {
  /** A token of an unknown `kid` refetches the JWKS at most once per this interval. */
  jwksCooldownMs?: number;
  /** Keys are refetched at the latest after this age. */
  jwksMaxAgeMs?: number;
  /** Verified tokens remembered until their `exp` (at most `memoMaxMs`), so a burst pays one signature check. */
  memoSize?: number;
  memoMaxMs?: number;
  /** A fixed key set instead of fetching `jwksUrl` (tests). */
  jwks?: JSONWebKeySet;
};

// Asymmetric algorithms only against published keys: an HS256 token "signed" with a public key is refused.
const ASYMMETRIC = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
];
const SYMMETRIC = ["HS256"];
const SUB = /^[A-Za-z0-9._:@|+-]{1,128}$/;

/** A bearer-token verifier over jose (Web Crypto on every runtime); alg `none` never verifies in jose. */
export function createJwtVerifier(config: AuthConfig, options: VerifierOptions = {}): TokenVerifier {
  const { key, algorithms } = keyOf(config, options);
  const remote = options.jwks === undefined && config.jwksUrl !== undefined;
  const memo = createTokenMemo(options.memoSize ?? 10_000, options.memoMaxMs ?? 5 * 60_000);
  return {
    async verify(token) {
      const remembered = memo.get(token);
      if (remembered) return { ok: true, identity: remembered };
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms,
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: config.clockSkewSeconds,
          // jose checks exp only when present: a token without one would never expire.
          requiredClaims: ["exp"],
        }));
      } catch (error) {
        if (remote && keysUnavailable(error))
          return { ok: false, reason: "the signing keys could not be fetched", unavailable: true };
        return { ok: false, reason: rejection(error) };
      }
      if (typeof payload.sub !== "string" || !SUB.test(payload.sub)) {
        return { ok: false, reason: "the token has no usable sub claim" };
      }
      const roles = rolesOf(payload, config.rolesClaim);
      const identity: Identity = { sub: payload.sub, roles, organiser: roles.includes(ORGANISER_ROLE) };
      memo.set(token, identity, (payload.exp as number) * 1000);
      return { ok: true, identity };
    },
  };
}

function keyOf(config: AuthConfig, options: VerifierOptions): { key: JWTVerifyGetKey; algorithms: string[] } {
  if (options.jwks) return { key: createLocalJWKSet(options.jwks), algorithms: ASYMMETRIC };
  if (config.jwksUrl) {
    const key = createRemoteJWKSet(new URL(config.jwksUrl), {
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: options.jwksMaxAgeMs ?? 10 * 60_000,
      timeoutDuration: 5_000,
    });
    return { key, algorithms: ASYMMETRIC };
  }
  if (config.secret) {
    // Imported once: handing jose the raw bytes would import the key again for every token.
    const imported = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(config.secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    return { key: () => imported, algorithms: SYMMETRIC };
  }
  throw new Error("createJwtVerifier needs a JWKS URL or a secret");
}

/** Roles as an array of strings or a space-separated string; a dotted name reaches a nested claim. */
function rolesOf(payload: JWTPayload, claim: string): string[] {
  let value: unknown = payload[claim];
  if (value === undefined && claim.includes(".")) {
    value = claim
      .split(".")
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], payload);
  }
  if (typeof value === "string") return value.split(" ").filter(Boolean);
  if (Array.isArray(value)) return value.filter((role): role is string => typeof role === "string");
  return [];
}

/** The JWKS endpoint timed out, failed or answered no key set: nothing is known about the token. */
function keysUnavailable(error: unknown): boolean {
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return true;
  // A failed fetch (refused, reset, DNS) is no JOSE error; a non-2xx answer is a JOSEError of its own.
  if (!(error instanceof errors.JOSEError)) return true;
  return error.code === "ERR_JOSE_GENERIC" && /response|fetch/i.test(error.message);
}

/** A short reason for the 401: which check failed, never the token. */
function rejection(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return `the token has no ${error.claim} claim`;
    if (error.claim === "nbf") return "the token is not valid yet";
    if (error.claim === "iss") return "the token was issued by another issuer";
    if (error.claim === "aud") return "the token is meant for another audience";
    return `the token's ${error.claim} claim is invalid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted";
  if (error instanceof errors.JWKSNoMatchingKey) return "the token's key is unknown";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature is invalid";
  return "the token is malformed";
}

/**
 * Verified tokens and their identity, bounded (the oldest entry goes first) and each forgotten at
 * its token's `exp`, so a remembered token is never honoured past it.
 */
export function createTokenMemo(size: number, maxMs: number) {
  const entries = new Map<string, { identity: Identity; until: number }>();
  return {
    get(token: string): Identity | undefined {
      const entry = entries.get(token);
      if (!entry) return undefined;
      if (entry.until > Date.now()) return entry.identity;
      entries.delete(token);
      return undefined;
    },
    set(token: string, identity: Identity, expiresAtMs: number): void {
      if (size <= 0) return;
      const until = Math.min(expiresAtMs, Date.now() + maxMs);
      if (until <= Date.now()) return;
      if (entries.size >= size) entries.delete(entries.keys().next().value as string);
      entries.set(token, { identity, until });
    },
    get size() {
      return entries.size;
    },
  };
}

export type { TokenCheck };
