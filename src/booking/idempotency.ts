import { and, eq, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { idempotencyKeys } from "../db/schema.ts";
import { fail, ok, type Result } from "./errors.ts";

/**
 * Idempotency keys live in PostgreSQL and are written in the same transaction as the change they
 * guard: a key is remembered exactly when its change committed. Only successes are remembered, so
 * a refused request (a taken seat, say) can be retried with the same key.
 */
export type IdempotencyRequest = { scope: string; key: string; requestHash: string };

export const IDEMPOTENCY_RETENTION_HOURS = 24;

/**
 * Takes the key for this transaction. Answers the stored response when the key was used before
 * with the same request, IDEMPOTENCY_KEY_REUSED with another one, and IDEMPOTENCY_KEY_IN_USE while
 * another transaction holds the key (the first request is still running).
 */
export async function takeIdempotencyKey(
  tx: Executor,
  request: IdempotencyRequest,
): Promise<Result<{ storedResponse: unknown } | undefined>> {
  const [lock] = await queryRows<{ taken: boolean }>(
    tx,
    sql`SELECT pg_try_advisory_xact_lock(hashtextextended(${`idempotency:${request.scope}:${request.key}`}, 0)) AS taken`,
  );
  if (!lock?.taken) return fail({ code: "IDEMPOTENCY_KEY_IN_USE", key: request.key });
  const [stored] = await tx
    .select({ requestHash: idempotencyKeys.requestHash, responseBody: idempotencyKeys.responseBody })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.scope, request.scope), eq(idempotencyKeys.key, request.key)));
  if (!stored) return ok(undefined);
  if (stored.requestHash !== request.requestHash)
    return fail({ code: "IDEMPOTENCY_KEY_REUSED", key: request.key });
  return ok({ storedResponse: JSON.parse(stored.responseBody) as unknown });
}

/**
 * The answer stored under the key, read without taking it: for a request that must know before
 * deciding what to claim (best available picks seats from the map of the moment, so a retry after
 * a sell-out would find none to pick). Undefined when the key is unused.
 */
export async function storedResponse(
  db: Executor,
  request: IdempotencyRequest,
): Promise<Result<{ storedResponse: unknown }> | undefined> {
  const [stored] = await db
    .select({ requestHash: idempotencyKeys.requestHash, responseBody: idempotencyKeys.responseBody })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.scope, request.scope), eq(idempotencyKeys.key, request.key)));
  if (!stored) return undefined;
  if (stored.requestHash !== request.requestHash)
    return fail({ code: "IDEMPOTENCY_KEY_REUSED", key: request.key });
  return ok({ storedResponse: JSON.parse(stored.responseBody) as unknown });
}

export async function rememberResponse(
  tx: Executor,
  request: IdempotencyRequest,
  response: unknown,
): Promise<void> {
  await tx.insert(idempotencyKeys).values({
    scope: request.scope,
    key: request.key,
    requestHash: request.requestHash,
    responseBody: JSON.stringify(response),
  });
}

/** A stable SHA-256 of a JSON value: object keys are sorted, so `{a,b}` and `{b,a}` match. */
export async function requestFingerprint(value: unknown): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(value)));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}
