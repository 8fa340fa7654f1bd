import type { Executor } from "../db/database.ts";
import { type PaymentAnswer, type PaymentClaim, payReservations } from "./claim-statements.ts";
import { type GroupCommitOptions, groupCommit } from "./group-commit.ts";

/**
 * Group commit for payments (group-commit.ts), per database: the payments that arrive while one
 * is in flight are made together by `pay_reservations`, each `pay_reservation` in a
 * subtransaction of its own. A payment with an Idempotency-Key is not batched (pay.ts): its
 * remembered answer is the view the service builds, stored in the payment's transaction.
 */

/** As for holds: four batches in flight, at most 64 payments each. */
export const PAYMENT_BATCH_DEFAULTS = { maxItems: 64, maxInFlight: 4 } as const;

const payments = groupCommit<PaymentClaim, PaymentAnswer>({
  send: payReservations,
  failureOf: (paid) =>
    paid.outcome === "failed"
      ? { sqlState: paid.sqlState, message: `payment failed: ${paid.message}` }
      : undefined,
});

/** Makes one payment with whatever other payments are waiting on this database. */
export function payInBatch(
  db: Executor,
  payment: PaymentClaim,
  options: GroupCommitOptions = {},
): Promise<PaymentAnswer> {
  return payments.submit(db, payment, { ...PAYMENT_BATCH_DEFAULTS, ...options });
}

/** Payments waiting for a batch on this database (not those in flight); for tests that build batches. */
export function waitingPayments(db: Executor): number {
  return payments.waiting(db);
}
