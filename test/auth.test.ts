import { exportSPKI } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { TokenVerifier } from "../src/auth/identity.ts";
import { createJwtVerifier, createTokenMemo } from "../src/auth/jwt-verifier.ts";
import { call, createSessionVia, createTestApp, type TestApp, useTestApp } from "./support/app.ts";
import { openTestDatabase, type TestDatabase } from "./support/database.ts";
import {
  bearer,
  type JwksServer,
  rsaKey,
  type SigningKey,
  signHs256,
  signRs256,
  startJwksServer,
  unsignedToken,
} from "./support/tokens.ts";

const ISSUER = "https://issuer.test/";
const AUDIENCE = "seat-reservation";
const SECRET = "a-test-secret-of-at-least-32-characters!";
const config = { issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles", clockSkewSeconds: 30 };
const claims = (sub: string, extra: Record<string, unknown> = {}) => ({
  sub,
  iss: ISSUER,
  aud: AUDIENCE,
  ...extra,
});

describe("bearer tokens against a JWKS endpoint", () => {
  let jwks: JwksServer;
  let key: SigningKey;
  let other: SigningKey;
  let verifier: TokenVerifier;
  let database: TestDatabase;
  let app: TestApp;

  beforeAll(async () => {
    key = await rsaKey("key-1");
    other = await rsaKey("key-1"); // same kid, another private key: a forgery
    jwks = await startJwksServer([key.publicJwk]);
    verifier = createJwtVerifier({ ...config, jwksUrl: jwks.url }, { jwksCooldownMs: 1_000 });
    database = await openTestDatabase("pglite");
    app = createTestApp(database.db, { auth: verifier });
  });
  afterAll(async () => {
    await jwks?.close();
    await database?.close();
  });

  it("accepts a valid RS256 token and names its subject and roles", async () => {
    const checked = await verifier.verify(await signRs256(key, claims("alice", { roles: ["organizer"] })));
    expect(checked).toEqual({ ok: true, identity: { sub: "alice", roles: ["organizer"], organiser: true } });
    const mine = await call(
      app,
      "GET",
      "/me/reservations",
      undefined,
      bearer(await signRs256(key, claims("alice"))),
    );
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual([]);
  });

  it.each([
    ["a forged signature", () => signRs256(other, claims("alice")), /signature is invalid/],
    ["an expired token", () => signRs256(key, claims("alice", { expiresIn: -3600 })), /expired/],
    ["a token not valid yet", () => signRs256(key, claims("alice", { notBeforeIn: 3600 })), /not valid yet/],
    ["another issuer", () => signRs256(key, { ...claims("alice"), iss: "https://evil.test/" }), /issuer/],
    ["another audience", () => signRs256(key, { ...claims("alice"), aud: "another-api" }), /audience/],
    ["alg none", async () => unsignedToken(claims("alice")), /algorithm|malformed/],
    ["no sub", () => signRs256(key, { iss: ISSUER, aud: AUDIENCE }), /sub/],
    ["no exp", () => signRs256(key, claims("alice", { expiresIn: null })), /has no exp claim/],
    ["garbage", async () => "not.a.jwt", /malformed/],
  ])("refuses %s with 401, WWW-Authenticate: Bearer and a problem", async (_name, token, reason) => {
    const value = await token();
    const checked = await verifier.verify(value);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.reason).toMatch(reason);
    const refused = await call(app, "GET", "/me/reservations", undefined, bearer(value));
    expect(refused.status).toBe(401);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(refused.headers.get("www-authenticate")).toMatch(
      /^Bearer realm="seat-reservation", error="invalid_token"/,
    );
    expect(refused.body).toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    if (!checked.ok) expect(refused.body.detail).toContain(checked.reason);
  });

  it("refuses an HS256 token keyed with the published RSA public key (algorithm confusion)", async () => {
    const { importJWK } = await import("jose");
    const publicKey = (await importJWK(key.publicJwk, "RS256", { extractable: true })) as CryptoKey;
    const pem = await exportSPKI(publicKey);
    for (const secret of [pem, JSON.stringify(key.publicJwk), key.publicJwk.n as string]) {
      const forged = await signHs256(secret, claims("mallory", { roles: ["organizer"] }), key.kid);
      const checked = await verifier.verify(forged);
      expect(checked).toMatchObject({ ok: false, reason: expect.stringMatching(/algorithm/) });
    }
  });

  it("asks for a token when none is sent", async () => {
    const refused = await call(app, "GET", "/me/reservations");
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="seat-reservation"');
    expect(refused.body.code).toBe("UNAUTHENTICATED");
  });
});

describe("key rotation through the JWKS endpoint", () => {
  it("refetches the key set once for an unknown kid, then accepts the new key; not again before the cool-down", async () => {
    const first = await rsaKey("2026-01");
    const rotated = await rsaKey("2026-02");
    const jwks = await startJwksServer([first.publicJwk]);
    try {
      const verifier = createJwtVerifier({ ...config, jwksUrl: jwks.url }, { jwksCooldownMs: 2_000 });
      expect((await verifier.verify(await signRs256(first, claims("alice")))).ok).toBe(true);
      expect(jwks.fetches()).toBe(1);

      // The identity provider rotates: the new key is published; our cached set does not have it.
      jwks.publish([first.publicJwk, rotated.publicJwk]);
      // Refresh is rate-limited to one per cool-down; wait past the first fetch's.
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      expect((await verifier.verify(await signRs256(rotated, claims("bob")))).ok).toBe(true);
      expect(jwks.fetches()).toBe(2);

      // A token of a kid nobody published, right after: refused without another fetch.
      const stranger = await rsaKey("unknown-kid");
      const refused = await verifier.verify(await signRs256(stranger, claims("eve")));
      expect(refused).toMatchObject({ ok: false, reason: expect.stringMatching(/key is unknown/) });
      expect(jwks.fetches()).toBe(2);
      // Known keys keep verifying from the cache.
      expect((await verifier.verify(await signRs256(first, claims("carol")))).ok).toBe(true);
      expect(jwks.fetches()).toBe(2);
    } finally {
      await jwks.close();
    }
  });
});

describe("HS256 shared secret", () => {
  const verifier = createJwtVerifier({ ...config, secret: SECRET });

  it("accepts a token signed with the secret and refuses one signed with another", async () => {
    expect((await verifier.verify(await signHs256(SECRET, claims("alice")))).ok).toBe(true);
    const forged = await verifier.verify(await signHs256(`${SECRET}-not`, claims("alice")));
    expect(forged).toMatchObject({ ok: false, reason: expect.stringMatching(/signature/) });
  });

  it("refuses a token without exp", async () => {
    const checked = await verifier.verify(await signHs256(SECRET, claims("alice", { expiresIn: null })));
    expect(checked).toEqual({ ok: false, reason: "the token has no exp claim" });
  });

  it("refuses RS256 tokens and unsigned ones", async () => {
    const key = await rsaKey("k");
    expect(await verifier.verify(await signRs256(key, claims("alice")))).toMatchObject({ ok: false });
    expect(await verifier.verify(unsignedToken(claims("alice")))).toMatchObject({ ok: false });
  });

  it("tolerates a small clock skew, not more", async () => {
    expect((await verifier.verify(await signHs256(SECRET, claims("a", { expiresIn: -10 })))).ok).toBe(true);
    expect((await verifier.verify(await signHs256(SECRET, claims("a", { notBeforeIn: 10 })))).ok).toBe(true);
    expect((await verifier.verify(await signHs256(SECRET, claims("a", { expiresIn: -60 })))).ok).toBe(false);
  });

  it("reads roles from a configured claim, nested or space-separated", async () => {
    const nested = createJwtVerifier({ ...config, secret: SECRET, rolesClaim: "realm_access.roles" });
    const token = await signHs256(SECRET, claims("o", { realm_access: { roles: ["organizer"] } }));
    expect(await nested.verify(token)).toMatchObject({ ok: true, identity: { organiser: true } });
    const spaced = createJwtVerifier({ ...config, secret: SECRET, rolesClaim: "scope" });
    const scoped = await signHs256(SECRET, claims("o", { scope: "read organizer" }));
    expect(await spaced.verify(scoped)).toMatchObject({ ok: true, identity: { organiser: true } });
  });
});

describe("the memo of verified tokens", () => {
  it("is bounded and never answers a token past its exp", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2026-12-01T12:00:00Z"));
      const memo = createTokenMemo(2, 300_000);
      const identity = { sub: "a", roles: [], organiser: false };
      const now = Date.now();
      memo.set("t1", identity, now + 10_000);
      memo.set("expired", identity, now - 1);
      expect(memo.get("t1")).toEqual(identity);
      expect(memo.get("expired")).toBeUndefined();
      vi.setSystemTime(now + 10_001);
      expect(memo.get("t1")).toBeUndefined();
      memo.set("t2", identity, Date.now() + 60_000);
      memo.set("t3", identity, Date.now() + 60_000);
      memo.set("t4", identity, Date.now() + 60_000);
      expect(memo.size).toBe(2);
      expect(memo.get("t2")).toBeUndefined();
      expect(memo.get("t4")).toEqual(identity);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** Buyer A against buyer B on every route, and what only organisers may do. */
describe("ownership and roles with auth on", () => {
  const suite = useTestApp("pglite", {
    overrides: { auth: createJwtVerifier({ ...config, secret: SECRET }) },
  });
  const tokens = {} as Record<"alice" | "bob" | "organiser", Record<string, string>>;
  let seatIds: string[];

  beforeAll(async () => {
    tokens.alice = bearer(await signHs256(SECRET, claims("alice")));
    tokens.bob = bearer(await signHs256(SECRET, claims("bob")));
    tokens.organiser = bearer(await signHs256(SECRET, claims("olga", { roles: ["organizer"] })));
  });

  const as = (who: keyof typeof tokens, method: string, path: string, body?: Record<string, unknown>) =>
    call(suite.app, method, path, body, tokens[who]);

  it("lets only organisers create sessions", async () => {
    const body = {
      movieId: "m",
      room: "R",
      startsAt: "2026-12-24T20:00:00Z",
      price: 10,
      rowsCount: 2,
      seatsPerRow: 4,
    };
    expect((await call(suite.app, "POST", "/sessions", body)).status).toBe(401);
    const buyer = await as("alice", "POST", "/sessions", body);
    expect(buyer.status).toBe(403);
    expect(buyer.body.code).toBe("FORBIDDEN");
    const organiser = await as("organiser", "POST", "/sessions", body);
    expect(organiser.status).toBe(201);
    seatIds = organiser.body.seats.map((seat: { id: string }) => seat.id);
    // Reading sessions needs no token.
    expect((await call(suite.app, "GET", `/sessions/${organiser.body.id}`)).status).toBe(200);
  });

  it("holds for the token's subject; a body userId must be that subject", async () => {
    expect((await call(suite.app, "POST", "/reservations", { seatIds: [seatIds[0]] })).status).toBe(401);
    const mismatch = await as("alice", "POST", "/reservations", { userId: "bob", seatIds: [seatIds[0]] });
    expect(mismatch.status).toBe(403);
    expect(mismatch.body.code).toBe("USER_MISMATCH");
    const held = await as("alice", "POST", "/reservations", { seatIds: [seatIds[0]] });
    expect(held.status).toBe(201);
    expect(held.body.userId).toBe("alice");
    const named = await as("alice", "POST", "/reservations", { userId: "alice", seatIds: [seatIds[1]] });
    expect(named.status).toBe(201);
  });

  it("hides buyer A's reservation from buyer B on every route; A reads, pays and cancels it", async () => {
    const held = await as("alice", "POST", "/reservations", { seatIds: [seatIds[2]] });
    const other = await as("alice", "POST", "/reservations", { seatIds: [seatIds[3]] });
    const id = held.body.id as string;

    for (const [method, path, body] of [
      ["GET", `/reservations/${id}`, undefined],
      ["POST", `/reservations/${id}/pay`, undefined],
      ["POST", `/reservations/${id}/pay`, { userId: "bob" }],
      ["POST", `/reservations/${id}/cancel`, undefined],
    ] as const) {
      const refused = await as("bob", method, path, body);
      expect(refused.status, `${method} ${path}`).toBe(404);
      expect(refused.body.code).toBe("RESERVATION_NOT_FOUND");
    }
    // Bob naming Alice in the body is refused as a mismatch before anything is looked up.
    expect((await as("bob", "POST", `/reservations/${id}/pay`, { userId: "alice" })).status).toBe(403);
    // Nothing changed: still Alice's, still pending.
    const mine = await as("alice", "GET", `/reservations/${id}`);
    expect(mine.status).toBe(200);
    expect(mine.body.status).toBe("PENDING");
    expect((await call(suite.app, "GET", `/reservations/${id}`)).status).toBe(401);

    // An organiser may read any reservation, not pay or cancel it.
    expect((await as("organiser", "GET", `/reservations/${id}`)).status).toBe(200);
    expect((await as("organiser", "POST", `/reservations/${id}/pay`)).status).toBe(404);

    const paid = await as("alice", "POST", `/reservations/${id}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe("CONFIRMED");
    expect((await as("bob", "POST", `/reservations/${other.body.id}/cancel`)).status).toBe(404);
    const cancelled = await as("alice", "POST", `/reservations/${other.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("CANCELLED");
  });

  it("does not replay buyer A's payment to buyer B who sends the same Idempotency-Key", async () => {
    const held = await as("alice", "POST", "/reservations", { seatIds: [seatIds[4]] });
    const key = { "idempotency-key": "pay-once" };
    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, undefined, {
      ...tokens.alice,
      ...key,
    });
    expect(paid.status).toBe(200);
    const replay = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, undefined, {
      ...tokens.bob,
      ...key,
    });
    expect(replay.status).toBe(404);
    expect(replay.body.sale).toBeUndefined();
  });

  it("lists a user's reservations and sales only for that user or an organiser; /me for the token's own", async () => {
    for (const path of ["/reservations/user/alice", "/sales/history/alice"]) {
      expect((await as("bob", "GET", path)).status, path).toBe(403);
      expect((await call(suite.app, "GET", path)).status, path).toBe(401);
      expect((await as("alice", "GET", path)).status, path).toBe(200);
      expect((await as("organiser", "GET", path)).status, path).toBe(200);
    }
    const aliceReservations = await as("alice", "GET", "/me/reservations");
    expect(aliceReservations.body.length).toBeGreaterThanOrEqual(4);
    expect(aliceReservations.body.every((r: { userId: string }) => r.userId === "alice")).toBe(true);
    expect((await as("bob", "GET", "/me/reservations")).body).toEqual([]);
    const aliceSales = await as("alice", "GET", "/me/sales");
    expect(aliceSales.body).toHaveLength(2);
    expect((await as("bob", "GET", "/me/sales")).body).toEqual([]);
    expect((await as("alice", "GET", "/reservations/user/alice")).body).toEqual(aliceReservations.body);
  });

  it("replays a retry that names the token's own subject, or spells the seat id in upper case", async () => {
    const seat = seatIds[5] as string;
    const headers = { ...tokens.alice, "idempotency-key": "same-request" };
    const held = await call(suite.app, "POST", "/reservations", { seatIds: [seat] }, headers);
    expect(held.status).toBe(201);
    const named = { userId: "alice", seatIds: [seat.toUpperCase()] };
    const retried = await call(suite.app, "POST", "/reservations", named, headers);
    expect(retried.status).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBe("true");
    expect(retried.body).toEqual(held.body);
    const pay = `/reservations/${held.body.id}/pay`;
    const paid = await call(suite.app, "POST", pay, undefined, headers);
    expect(paid.status).toBe(200);
    const repaid = await call(suite.app, "POST", pay, { userId: "alice" }, headers);
    expect(repaid.headers.get("idempotent-replayed")).toBe("true");
    expect(repaid.body).toEqual(paid.body);
  });
});

describe("open mode (no auth configured)", () => {
  const suite = useTestApp("pglite");

  it("works as before: bodies name the user, and there is no 'me'", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await call(suite.app, "POST", "/reservations", { userId: "ann", seatIds: [seatIds[0]] });
    expect(held.status).toBe(201);
    expect((await call(suite.app, "POST", "/reservations", { seatIds: [seatIds[1]] })).status).toBe(400);
    expect((await call(suite.app, "GET", `/reservations/${held.body.id}`)).status).toBe(200);
    expect((await call(suite.app, "GET", "/reservations/user/ann")).body).toHaveLength(1);
    expect((await call(suite.app, "GET", "/me/reservations")).status).toBe(401);
  });
});

describe("metrics token and the auth report", () => {
  const exporter = {
    observeRequest() {},
    render: async () => ({ contentType: "text/plain; version=0.0.4", body: "holds_total 0\n" }),
  };
  const secured = useTestApp("pglite", {
    overrides: {
      metrics: exporter,
      metricsToken: "scrape-token-0123456789",
      auth: createJwtVerifier({ ...config, secret: SECRET }),
    },
  });
  const open = useTestApp("pglite", { overrides: { metrics: exporter } });

  it("answers /metrics only with METRICS_TOKEN as the bearer token when it is set", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token-0123456789" },
      { authorization: "scrape-token-0123456789" },
    ];
    for (const headers of attempts) {
      const refused = await call(secured.app, "GET", "/metrics", undefined, headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
    const scraped = await secured.app.request("/metrics", {
      headers: { authorization: "Bearer scrape-token-0123456789" },
    });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("holds_total");
    expect((await open.app.request("/metrics")).status).toBe(200);
  });

  it("reports auth enabled or disabled in /health", async () => {
    expect((await call(secured.app, "GET", "/health")).body.auth).toBe("enabled");
    expect((await call(open.app, "GET", "/health")).body.auth).toBe("disabled");
  });

  it("declares the bearer scheme in the OpenAPI document, per route", async () => {
    const doc = (await call(open.app, "GET", "/openapi.json")).body;
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.paths["/reservations"].post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/sessions"].post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/me/sales"].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/reservations"].post.responses).toHaveProperty("401");
    expect(doc.paths["/sessions"].get.security).toBeUndefined();
    expect(doc.paths["/health"].get.security).toBeUndefined();
  });
});

describe("an unreachable JWKS endpoint", () => {
  it("answers 503 (the token could not be checked), not 401", async () => {
    const key = await rsaKey("k-503");
    const jwks = await startJwksServer([key.publicJwk]);
    const url = jwks.url;
    await jwks.close();
    const database = await openTestDatabase("pglite");
    try {
      const verifier = createJwtVerifier({ ...config, jwksUrl: url }, { jwksCooldownMs: 0 });
      const app = createTestApp(database.db, { auth: verifier });
      const token = bearer(await signRs256(key, claims("alice")));
      const down = await call(app, "GET", "/me/reservations", undefined, token);
      expect(down.status).toBe(503);
      expect(down.body.code).toBe("SERVICE_UNAVAILABLE");
      expect(down.headers.get("retry-after")).toBe("1");
    } finally {
      await database.close();
    }
  });
});
