/**
 * Delayed callbacks that expire a hold when its time is up (QStash in production). They make
 * expiry prompt; they are never needed for correctness: an overdue hold already reads as free, and
 * the sweeper (Node, Deno, Bun) or the Cron Trigger (Workers) expires whatever a callback missed.
 */
export type HoldExpiryCallbacks = {
  /**
   * Asks for the hold's callback after `delaySeconds`; answers the message id, or undefined on
   * failure. `deduplicationId` (the reservation id when absent) makes a re-sent request harmless;
   * an extended hold's new callback needs one of its own.
   */
  schedule(hold: {
    reservationId: string;
    delaySeconds: number;
    deduplicationId?: string;
  }): Promise<string | undefined>;
  /** Withdraws a scheduled callback (best effort: a callback that still arrives finds the hold settled). */
  cancel(messageId: string): Promise<void>;
  /** True only for a genuine callback: signed by the callback service for exactly this URL and body. */
  verify(callback: { signature: string; body: string; url: string }): Promise<boolean>;
  /** The absolute URL a hold's callback is delivered to; also what its signature must name. */
  callbackUrl(reservationId: string): string;
  /** Where failures of the best-effort calls go (the entry point's logger). */
  onError(error: unknown, action: "schedule" | "record" | "cancel"): void;
};

/** The route the callbacks are delivered to, under the app's public base URL. */
export const EXPIRY_CALLBACK_PATH = "/internal/expire";

export function expiryCallbackUrl(publicBaseUrl: string, reservationId: string): string {
  return `${publicBaseUrl.replace(/\/+$/, "")}${EXPIRY_CALLBACK_PATH}/${reservationId}`;
}
