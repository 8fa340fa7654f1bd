import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import type { ReservationCreated } from "../events/types.ts";
import { type BookingError, fail, ok, type Result } from "./errors.ts";
import type { IdempotencyRequest } from "./idempotency.ts";
import { type ReservationRow, toReservationView } from "./reservations.ts";
import type { ReservationView } from "./views.ts";

/**
 * A batch of holds' claims, a payment and a batch of payments, each one statement: the database
 * functions of drizzle/0008_group_commit_claims.sql, 0005_claim_and_pay_functions.sql and
 * 0010_group_commit_payments.sql. Outside a
 * transaction each statement is a transaction of its own.
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

type PaymentOutcome = {
  error?: "RESERVATION_NOT_FOUND" | "RESERVATION_NOT_OWNED" | "RESERVATION_CANCELLED" | "RESERVATION_EXPIRED";
  paidNow?: boolean;
  reservation?: ReservationRow;
};

/**
 * Pays a live hold (owned by `userId` when given) under the reservation's row lock; a hold paid
 * before answers its sale again with `paidNow` false. Throws on exclusion_violation.
 */
export async function payInDatabase(
  db: Executor,
  reservationId: string,
  userId: string | undefined,
): Promise<Result<{ view: ReservationView; paidNow: boolean }>> {
  const [row] = await queryRows<{ outcome: PaymentOutcome }>(
    db,
    sql`SELECT pay_reservation(${reservationId}::uuid, ${userId ?? null}::text) AS outcome`,
  );
  const outcome = row?.outcome;
  if (!outcome) throw new Error("pay_reservation answered nothing");
  return paymentResult(outcome, reservationId);
}

/** One payment as the batch statement takes it; `userId` the owner it must have, when given. */
export type PaymentClaim = { reservationId: string; userId: string | undefined };

export type PaymentAnswer =
  | { outcome: "answered"; result: Result<{ view: ReservationView; paidNow: boolean }> }
  | { outcome: "failed"; sqlState: string; message: string };

/**
 * Makes a batch of payments in one statement (`pay_reservations`, drizzle/0010), each one
 * `pay_reservation` in a subtransaction of its own, and answers each, in the batch's order. A
 * payment that met a seat claimed by someone else after its hold expired answers
 * RESERVATION_EXPIRED. Throws only when the batch as a whole failed.
 */
export async function payReservations(
  db: Executor,
  payments: readonly PaymentClaim[],
): Promise<PaymentAnswer[]> {
  const items = payments.map((payment, ord) => ({
    ord,
    reservation_id: payment.reservationId,
    user_id: payment.userId ?? null,
  }));
  const rows = await queryRows<{
    ord: number;
    outcome: string;
    answer: PaymentOutcome | null;
    failure: string | null;
  }>(
    db,
    sql`SELECT o_ord AS ord, o_outcome AS outcome, o_answer AS answer, o_failure AS failure
      FROM pay_reservations(${JSON.stringify(items)}::jsonb)`,
  );
  const byOrd = new Map(rows.map((row) => [Number(row.ord), row]));
  return payments.map((payment, ord): PaymentAnswer => {
    const row = byOrd.get(ord);
    if (!row) throw new Error(`pay_reservations answered nothing for ${payment.reservationId}`);
    if (row.outcome === "answered" && row.answer)
      return { outcome: "answered", result: paymentResult(row.answer, payment.reservationId) };
    const text = row.failure ?? "XX000 pay_reservations gave no reason";
    return { outcome: "failed", sqlState: text.slice(0, 5), message: text.slice(6) };
  });
}

function paymentResult(
  outcome: PaymentOutcome,
  reservationId: string,
): Result<{ view: ReservationView; paidNow: boolean }> {
  if (outcome.reservation) {
    return ok({ view: toReservationView(outcome.reservation), paidNow: outcome.paidNow === true });
  }
  const error: BookingError = { code: outcome.error ?? "RESERVATION_NOT_FOUND", reservationId };
  return fail(error);
}
