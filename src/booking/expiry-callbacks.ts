import { and, eq } from "drizzle-orm";
import { reservations } from "../db/schema.ts";
import type { BookingDeps } from "./deps.ts";

/**
 * A new hold's expiry callback, scheduled once the hold has committed. Its message id is kept on
 * the reservation so that paying or cancelling can withdraw it. Nothing here can fail the hold:
 * a callback that was never scheduled only leaves the hold to the sweeper or the Cron Trigger.
 */
export async function scheduleHoldExpiry(deps: BookingDeps, reservationId: string): Promise<void> {
  const callbacks = deps.holdExpiry;
  if (!callbacks) return;
  const messageId = await callbacks.schedule({ reservationId, delaySeconds: deps.reservationTtlSeconds });
  if (!messageId) return;
  try {
    await deps.db
      .update(reservations)
      .set({ expiryMessageId: messageId })
      .where(and(eq(reservations.id, reservationId), eq(reservations.status, "PENDING")));
  } catch (error) {
    callbacks.onError(error, "record");
  }
}

/** A paid or cancelled hold needs no expiry callback any more; a missed withdrawal costs one no-op call. */
export async function withdrawHoldExpiry(deps: BookingDeps, reservationId: string): Promise<void> {
  const callbacks = deps.holdExpiry;
  if (!callbacks) return;
  try {
    const [row] = await deps.db
      .select({ messageId: reservations.expiryMessageId })
      .from(reservations)
      .where(eq(reservations.id, reservationId));
    if (row?.messageId) await callbacks.cancel(row.messageId);
  } catch (error) {
    callbacks.onError(error, "cancel");
  }
}

/**
 * An extended hold's callback: a new one at the new end (with its own deduplication id, or QStash
 * would drop it as a repeat of the first), recorded in place of the old one, which is then
 * withdrawn. An old one that still arrives finds the hold not due (409) and does nothing; the
 * sweeper remains the backstop either way.
 */
export async function rescheduleHoldExpiry(
  deps: BookingDeps,
  hold: { reservationId: string; expiresAt: string },
): Promise<void> {
  const callbacks = deps.holdExpiry;
  if (!callbacks) return;
  const { reservationId } = hold;
  const endsAt = Date.parse(hold.expiresAt);
  try {
    const [row] = await deps.db
      .select({ messageId: reservations.expiryMessageId })
      .from(reservations)
      .where(eq(reservations.id, reservationId));
    const messageId = await callbacks.schedule({
      reservationId,
      delaySeconds: Math.max(0, Math.ceil((endsAt - Date.now()) / 1000)),
      deduplicationId: `${reservationId}-${endsAt}`,
    });
    if (!messageId) return;
    await deps.db
      .update(reservations)
      .set({ expiryMessageId: messageId })
      .where(and(eq(reservations.id, reservationId), eq(reservations.status, "PENDING")));
    if (row?.messageId && row.messageId !== messageId) await callbacks.cancel(row.messageId);
  } catch (error) {
    callbacks.onError(error, "record");
  }
}
