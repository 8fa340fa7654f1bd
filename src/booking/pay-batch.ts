import type { Executor } from "../db/database.ts";
import { type GroupCommitOptions, keyedGroupCommit } from "./group-commit.ts";
import { type PaymentClaim, type PaymentOutcome, payHolds } from "./pay-statement.ts";

/**
 * Group commit for payments (group-commit.ts), per database: the payments that arrive while one
 * is in flight are made together by `payHolds` (pay-statement.ts), with or without an
 * Idempotency-Key. A payment that failed on its own for another reason than a refusal is
 * rejected with `ItemFailed`.
 */

/**
 * Two batches in flight, at most 64 payments each. A payment's own writes are now cheap enough
 * that each batch's fixed cost (its transaction, two statements, the commit) shows: on the bench's
 * pay (64 payers, busy 2-core machine) two in flight made batches of ~32 and cost PostgreSQL a
 * median 185 us a payment against 275 us with four (~16 a batch), at no loss of payments/s.
 */
export const PAYMENT_BATCH_DEFAULTS = { maxItems: 64, maxInFlight: 2 } as const;

const payments = keyedGroupCommit<PaymentClaim, PaymentOutcome>("payment", payHolds, {
  outcome: "key_in_use",
});

/** Makes one payment with whatever other payments are waiting on this database. */
export function payInBatch(
  db: Executor,
  payment: PaymentClaim,
  options: GroupCommitOptions = {},
): Promise<PaymentOutcome> {
  return payments.submit(db, payment, { ...PAYMENT_BATCH_DEFAULTS, ...options });
}

/** Payments waiting for a batch on this database (not those in flight); for tests that build batches. */
export function waitingPayments(db: Executor): number {
  return payments.waiting(db);
}
