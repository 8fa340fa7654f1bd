import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import type { ReservationCreated } from "../events/types.ts";
import type { IdempotencyRequest } from "./idempotency.ts";

/**
 * A batch of holds' claims in one statement: the database function of
 * drizzle/0008_group_commit_claims.sql. Outside a transaction the statement is a transaction of its
 * own. (Payments: pay-statement.ts.)
 */

/** One hold as the claim statement takes it: "claim these seats for this user for this long". */
export type HoldClaim = {
  reservationId: string;
  userId: string;
  sessionId: string;
  /** Distinct, ascending. */
  seatIds: readonly string[];
  totalCents: number;
  ttlSeconds: number;
  /** Seats the claim's transaction try-locks first (the lease's `transactionLocks`); [] for none. */
  transactionLocks: readonly string[];
  /** The reservation.created payload; the database adds `expiresAt`. */
  event: Omit<ReservationCreated["data"], "expiresAt">;
  /** With an Idempotency-Key: the key and the answer to store, without the times (added there). */
  idempotency?: IdempotencyRequest & { answer: Record<string, unknown> };
};

export type ClaimOutcome =
  | { outcome: "created"; createdAt: string; expiresAt: string }
  | { outcome: "taken" | "locked"; seatIds: string[] }
  | { outcome: "replayed"; stored: unknown }
  | { outcome: "key_in_use" | "key_reused" }
  | { outcome: "failed"; sqlState: string; message: string };

type ClaimRow = {
  reservation_id: string;
  outcome: string;
  seat_ids: string[] | null;
  stored: string | null;
  created_at: string | null;
  expires_at: string | null;
};

/** The statement for a batch of holds; the benchmark's diagnostic row sends exactly this. */
export function claimHoldsStatement(claims: readonly HoldClaim[]): SQL {
  const holds = claims.map((claim) => ({
    reservation_id: claim.reservationId,
    user_id: claim.userId,
    session_id: claim.sessionId,
    total_cents: claim.totalCents,
    ttl_seconds: claim.ttlSeconds,
    seat_ids: claim.seatIds,
    try_locks: claim.transactionLocks.length > 0,
    event: claim.event,
    key_scope: claim.idempotency?.scope ?? null,
    key: claim.idempotency?.key ?? null,
    key_hash: claim.idempotency?.requestHash ?? null,
    answer: claim.idempotency?.answer ?? null,
  }));
  return sql`SELECT o_reservation_id::text AS reservation_id, o_outcome AS outcome, o_seat_ids AS seat_ids,
    o_stored AS stored, o_created_at AS created_at, o_expires_at AS expires_at
    FROM claim_holds(${JSON.stringify(holds)}::json)`;
}

/**
 * Claims a batch of holds in one statement and answers each one's outcome, in the batch's order.
 * Each hold is all-or-nothing and independent of the others; throws only when the batch as a
 * whole failed (then nothing of it committed, or the connection was lost with the commit).
 */
export async function claimHolds(db: Executor, claims: readonly HoldClaim[]): Promise<ClaimOutcome[]> {
  const rows = await queryRows<ClaimRow>(db, claimHoldsStatement(claims));
  const byId = new Map(rows.map((row) => [row.reservation_id, row]));
  return claims.map((claim) => {
    const row = byId.get(claim.reservationId);
    if (!row) throw new Error(`claim_holds answered nothing for ${claim.reservationId}`);
    return outcomeOf(row);
  });
}

function outcomeOf(row: ClaimRow): ClaimOutcome {
  switch (row.outcome) {
    case "created":
      return { outcome: "created", createdAt: row.created_at as string, expiresAt: row.expires_at as string };
    case "taken":
    case "locked":
      return { outcome: row.outcome, seatIds: row.seat_ids ?? [] };
    case "replayed":
      return { outcome: "replayed", stored: JSON.parse(row.stored as string) as unknown };
    case "key_in_use":
    case "key_reused":
      return { outcome: row.outcome };
    default: {
      const text = row.stored ?? "XX000 claim_holds gave no reason";
      return { outcome: "failed", sqlState: text.slice(0, 5), message: text.slice(6) };
    }
  }
}
