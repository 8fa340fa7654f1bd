import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { idempotencyKeys, outbox } from "../db/schema.ts";
import type { PaymentConfirmed } from "../events/types.ts";
import type { IdempotencyRequest } from "./idempotency.ts";
import { fromCents } from "./money.ts";
import { type SeatInfo, seatsById } from "./seat-catalogue.ts";
import type { ReservationView } from "./views.ts";

/**
 * A batch of payments in one transaction. `pay_holds` (drizzle/0011) decides what only the
 * database can: the row locks, liveness, ownership, the claims made permanent under the exclusion
 * constraint, the sale; it answers the reservation's facts. The service builds the answer from
 * them and its seat catalogue, and the payment.confirmed event from its schema's type, and writes
 * the events (and the answers of payments with an Idempotency-Key) after it, before the commit: an
 * event and a remembered answer exist exactly when their sale does. The price is a second round
 * trip and the transaction's own (BEGIN, COMMIT): four a batch instead of one.
 */

/** One payment: `userId` is the owner the reservation must have, when given. */
export type PaymentClaim = {
  reservationId: string;
  userId: string | undefined;
  idempotency?: IdempotencyRequest;
};

export type PaymentRefusal =
  | "RESERVATION_NOT_FOUND"
  | "RESERVATION_NOT_OWNED"
  | "RESERVATION_CANCELLED"
  | "RESERVATION_EXPIRED";

export type PaymentOutcome =
  /** Sold: by this payment (`paidNow`), or before it (paying twice answers the same sale). */
  | { outcome: "paid"; view: ReservationView; paidNow: boolean }
  | { outcome: "refused"; code: PaymentRefusal }
  | { outcome: "replayed"; stored: unknown }
  | { outcome: "key_in_use" | "key_reused" }
  | { outcome: "failed"; sqlState: string; message: string };

type PayRow = {
  ord: number;
  key: "key_in_use" | "key_reused" | "replayed" | null;
  stored: string | null;
  status: string | null;
  paid_now: boolean;
  refusal: string | null;
  session_id: string;
  user_id: string;
  total_cents: number;
  expires_at: string;
  created_at: string;
  seat_ids: string[] | null;
  sale_id: string | null;
  sale_cents: number | null;
  paid_at: string | null;
};

/** What a row says of its payment before the answer is built: a sold row still needs its seats. */
type Decided =
  | { outcome: "sold"; reservationId: string; row: PayRow; paidNow: boolean }
  | Exclude<PaymentOutcome, { outcome: "paid" }>;

/**
 * Makes a batch of payments and answers each, in the batch's order; each is independent of the
 * others. Throws only when the batch failed as a whole: then nothing of it committed, or the
 * connection was lost with the commit.
 */
export async function payHolds(db: Executor, payments: readonly PaymentClaim[]): Promise<PaymentOutcome[]> {
  return db.transaction(async (tx) => {
    const rows = await queryRows<PayRow>(tx, payHoldsStatement(payments));
    const decided = payments.map((payment, index) => {
      const row = rows[index];
      if (!row || Number(row.ord) !== index + 1)
        throw new Error(`pay_holds answered nothing for ${payment.reservationId}`);
      return decide(payment, row);
    });
    const seatIds = decided.flatMap((item) => (item.outcome === "sold" ? (item.row.seat_ids ?? []) : []));
    const seats = await seatsById(db, [...new Set(seatIds)], tx);
    const events: PaymentConfirmed["data"][] = [];
    const outcomes = decided.map((item): PaymentOutcome => {
      if (item.outcome !== "sold") return item;
      const view = viewOf(item.reservationId, item.row, seats);
      if (item.paidNow) events.push(paymentConfirmed(view, item.row));
      return { outcome: "paid", view, paidNow: item.paidNow };
    });
    await recordPayments(tx, events, rememberedAnswers(payments, outcomes));
    return outcomes;
  });
}

function payHoldsStatement(payments: readonly PaymentClaim[]) {
  const items = payments.map((payment) => ({
    reservation_id: payment.reservationId,
    user_id: payment.userId ?? null,
    key_scope: payment.idempotency?.scope ?? null,
    key: payment.idempotency?.key ?? null,
    key_hash: payment.idempotency?.requestHash ?? null,
  }));
  return sql`SELECT o_ord AS ord, o_key AS key, o_stored AS stored, o_status AS status,
    o_paid_now AS paid_now, o_refusal AS refusal, o_session_id AS session_id, o_user_id AS user_id,
    o_total_cents AS total_cents, o_expires_at AS expires_at, o_created_at AS created_at,
    o_seat_ids AS seat_ids, o_sale_id AS sale_id, o_sale_cents AS sale_cents, o_paid_at AS paid_at
    FROM pay_holds(${JSON.stringify(items)}::json)`;
}

/** In the order a single payment was always judged: found, owned, not cancelled, then sold or expired. */
function decide(payment: PaymentClaim, row: PayRow): Decided {
  switch (row.key) {
    case "key_in_use":
    case "key_reused":
      return { outcome: row.key };
    case "replayed":
      return { outcome: "replayed", stored: JSON.parse(row.stored as string) as unknown };
  }
  if (row.status === null) return { outcome: "refused", code: "RESERVATION_NOT_FOUND" };
  if (payment.userId !== undefined && payment.userId !== row.user_id)
    return { outcome: "refused", code: "RESERVATION_NOT_OWNED" };
  if (row.refusal === "expired") return { outcome: "refused", code: "RESERVATION_EXPIRED" };
  if (row.refusal !== null)
    return { outcome: "failed", sqlState: row.refusal.slice(0, 5), message: row.refusal.slice(6) };
  if (row.status === "CONFIRMED")
    return { outcome: "sold", reservationId: payment.reservationId, row, paidNow: row.paid_now === true };
  if (row.status === "CANCELLED") return { outcome: "refused", code: "RESERVATION_CANCELLED" };
  // EXPIRED, or PENDING past its end on the clock after the row lock.
  return { outcome: "refused", code: "RESERVATION_EXPIRED" };
}

/** The reservation as `GET /reservations/:id` shows it: seats in seat-map order, amounts in decimals. */
function viewOf(reservationId: string, row: PayRow, catalogue: Map<string, SeatInfo>): ReservationView {
  const seats = (row.seat_ids ?? []).map((id) => catalogue.get(id) as SeatInfo);
  seats.sort((a, b) => a.position - b.position);
  return {
    id: reservationId,
    sessionId: row.session_id,
    userId: row.user_id,
    status: "CONFIRMED",
    seatIds: seats.map((seat) => seat.id),
    seats: seats.map(({ id, row: seatRow, number, label }) => ({ id, row: seatRow, number, label })),
    totalPrice: fromCents(Number(row.total_cents)),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    sale: {
      id: row.sale_id as string,
      amount: fromCents(Number(row.sale_cents)),
      paidAt: row.paid_at as string,
    },
  };
}

/** The answers to remember: those of payments with an Idempotency-Key answered with their sale. */
function rememberedAnswers(
  payments: readonly PaymentClaim[],
  outcomes: readonly PaymentOutcome[],
): (typeof idempotencyKeys.$inferInsert)[] {
  return outcomes.flatMap((outcome, index) => {
    const key = payments[index]?.idempotency;
    if (!key || outcome.outcome !== "paid") return [];
    const { scope, requestHash } = key;
    return [{ scope, key: key.key, requestHash, responseBody: JSON.stringify(outcome.view) }];
  });
}

/**
 * After pay_holds, in its transaction: each sale's payment.confirmed event and the remembered
 * answers (refusals are not remembered, so a refused payment can be retried with its key).
 */
async function recordPayments(
  tx: Executor,
  events: readonly PaymentConfirmed["data"][],
  answers: readonly (typeof idempotencyKeys.$inferInsert)[],
): Promise<void> {
  if (events.length > 0) {
    await tx.insert(outbox).values(
      events.map((event) => ({
        type: "payment.confirmed",
        aggregateId: event.reservationId,
        payload: event,
      })),
    );
  }
  if (answers.length > 0) await tx.insert(idempotencyKeys).values([...answers]);
}

/** Seats in seat-id order, as the database lists them and every event writer does. */
function paymentConfirmed(view: ReservationView, row: PayRow): PaymentConfirmed["data"] {
  return {
    reservationId: view.id,
    saleId: row.sale_id as string,
    sessionId: view.sessionId,
    userId: view.userId,
    seatIds: row.seat_ids ?? [],
    amount: view.totalPrice,
    paidAt: row.paid_at as string,
  };
}
