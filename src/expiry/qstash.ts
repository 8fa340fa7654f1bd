import { Client, Receiver } from "@upstash/qstash";
import { withDeadline } from "../deadline.ts";
import type { QStashConfig } from "../env.ts";
import { expiryCallbackUrl, type HoldExpiryCallbacks } from "./hold-expiry.ts";

/** A hold answers its buyer first: a QStash that is slow or down costs at most this much. */
const PUBLISH_TIMEOUT_MS = 2_000;

type Options = {
  onError: HoldExpiryCallbacks["onError"];
  /** How long a publish or cancel may take before it counts as failed. */
  timeoutMs?: number;
};

/**
 * Hold expiry through QStash: a delayed, signed POST to the app's own callback route. The message
 * is deduplicated by reservation id, so a retried publish never schedules a hold twice. Signing
 * keys come from the configuration, never from the SDK's environment lookups (there is no
 * Node-style environment on every runtime), and the SDK's dev server is off.
 */
export function qstashHoldExpiry(config: QStashConfig, options: Options): HoldExpiryCallbacks {
  const client = new Client({
    baseUrl: config.url,
    token: config.token,
    devMode: false,
    enableTelemetry: false,
    // Network errors only; the deduplication id makes a re-sent publish harmless.
    retry: { retries: 1, backoff: () => 100 },
  });
  const receiver = new Receiver({
    currentSigningKey: config.currentSigningKey,
    nextSigningKey: config.nextSigningKey,
    devMode: false,
  });
  const timeoutMs = options.timeoutMs ?? PUBLISH_TIMEOUT_MS;
  const callbackUrl = (reservationId: string) => expiryCallbackUrl(config.publicBaseUrl, reservationId);

  return {
    callbackUrl,
    onError: options.onError,
    async schedule({ reservationId, delaySeconds, deduplicationId }) {
      try {
        const published = await withDeadline(
          client.publishJSON({
            url: callbackUrl(reservationId),
            body: { reservationId },
            delay: Math.max(0, Math.ceil(delaySeconds)),
            deduplicationId: deduplicationId ?? reservationId,
          }),
          timeoutMs,
          "QStash did not answer",
        );
        return published.messageId;
      } catch (error) {
        options.onError(error, "schedule");
        return undefined;
      }
    },
    async cancel(messageId) {
      try {
        await withDeadline(client.messages.cancel(messageId), timeoutMs, "QStash did not answer");
      } catch (error) {
        options.onError(error, "cancel");
      }
    },
    async verify({ signature, body, url }) {
      try {
        return await receiver.verify({ signature, body, url });
      } catch {
        return false;
      }
    },
  };
}
