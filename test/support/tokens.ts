import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** Signs test tokens: RS256 key pairs published by a JWKS server on loopback, or an HS256 secret. */

export type SigningKey = { kid: string; privateKey: CryptoKey; publicJwk: JWK };

export async function rsaKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { kid, privateKey, publicJwk };
}

export type Claims = {
  sub?: string;
  roles?: string[] | string;
  iss?: string;
  aud?: string;
  /** Seconds from now; negative for the past; null for a token without `exp`. */
  expiresIn?: number | null;
  notBeforeIn?: number;
  [claim: string]: unknown;
};

function build(claims: Claims): SignJWT {
  const { expiresIn = 600, notBeforeIn, iss, aud, ...rest } = claims;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(rest).setIssuedAt(now);
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn);
  if (notBeforeIn !== undefined) jwt.setNotBefore(now + notBeforeIn);
  if (iss) jwt.setIssuer(iss);
  if (aud) jwt.setAudience(aud);
  return jwt;
}

export function signRs256(key: SigningKey, claims: Claims): Promise<string> {
  return build(claims).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(key.privateKey);
}

export function signHs256(secret: string | Uint8Array, claims: Claims, kid?: string): Promise<string> {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  return build(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", ...(kid ? { kid } : {}) })
    .sign(bytes);
}

/** An unsecured token (`alg: none`), which no verifier may accept. */
export function unsignedToken(claims: Claims): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const { expiresIn = 600, ...rest } = claims;
  const exp = expiresIn === null ? undefined : now + expiresIn;
  return `${encode({ alg: "none", typ: "JWT" })}.${encode({ ...rest, iat: now, exp })}.`;
}

export type JwksServer = {
  url: string;
  /** How many times the key set was fetched. */
  fetches: () => number;
  publish: (keys: JWK[]) => void;
  close: () => Promise<void>;
};

/** A JWKS endpoint on loopback, as Auth0, Clerk or Cognito publish one; its keys can be rotated. */
export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let published = keys;
  let fetches = 0;
  const server: Server = createServer((request, response) => {
    if (request.url !== "/.well-known/jwks.json") {
      response.writeHead(404).end();
      return;
    }
    fetches += 1;
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    publish: (next) => {
      published = next;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
