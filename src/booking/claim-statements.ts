import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { type BookingError, fail, ok, type Result } from "./errors.ts";
import { type ReservationRow, toReservationView } from "./reservations.ts";
import type { ReservationView } from "./views.ts";

/**
 * A hold's claim and a payment, each one statement: the database functions of
 * drizzle/0005_claim_and_pay_functions.sql check, write the rows and the outbox event, and answer
 * the reservation, in one round trip. Outside a transaction each is a transaction of its own.
 */

export type Claim = { reservationId: string; userId: string; seatIds: readonly string[]; ttlSeconds: number };

type Outcome = {
  error?: "SEAT_NOT_FOUND" | "SEATS_FROM_MULTIPLE_SESSIONS" | "SEAT_UNAVAILABLE";
  seatIds?: string[];
  sessionIds?: string[];
  reservation?: ReservationRow;
};

/** The statement itself; the benchmark's database ceiling sends exactly this. */
export function claimStatement(claim: Claim): SQL {
  return sql`SELECT claim_seats(${claim.reservationId}::uuid, ${claim.userId}::text, ${uuidArray(claim.seatIds)}, ${claim.ttlSeconds}::int) AS outcome`;
}

/** Claims every seat of `claim.seatIds` (distinct, sorted) or none; throws on exclusion_violation. */
export async function claimSeats(db: Executor, claim: Claim): Promise<Result<ReservationView>> {
  const [row] = await queryRows<{ outcome: Outcome }>(db, claimStatement(claim));
  const outcome = row?.outcome;
  if (!outcome) throw new Error("claim_seats answered nothing");
  if (outcome.reservation) return ok(toReservationView(outcome.reservation));
  if (outcome.error === "SEATS_FROM_MULTIPLE_SESSIONS") {
    return fail({ code: outcome.error, sessionIds: outcome.sessionIds ?? [] });
  }
  return fail({ code: outcome.error ?? "SEAT_UNAVAILABLE", seatIds: outcome.seatIds ?? [] });
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
  if (outcome.reservation) {
    return ok({ view: toReservationView(outcome.reservation), paidNow: outcome.paidNow === true });
  }
  const error: BookingError = { code: outcome.error ?? "RESERVATION_NOT_FOUND", reservationId };
  return fail(error);
}
