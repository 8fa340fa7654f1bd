/**
 * Who is calling. With auth configured the buyer is the bearer token's `sub`; organisers carry the
 * `organizer` role in the roles claim. Types only: every layer may import them.
 */
export type Identity = { sub: string; roles: readonly string[]; organiser: boolean };

/** `unavailable`: the token could not be checked (the key set did not answer), not found bad. */
export type TokenCheck =
  | { ok: true; identity: Identity }
  | { ok: false; reason: string; unavailable?: boolean };

/** Verifies a bearer token (JWKS or a shared secret); never throws for a bad token, it answers why. */
export type TokenVerifier = { verify(token: string): Promise<TokenCheck> };

export const ORGANISER_ROLE = "organizer";
