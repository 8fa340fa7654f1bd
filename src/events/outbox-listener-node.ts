import pg from "pg";
import { OUTBOX_CHANNEL } from "./outbox.ts";

export type OutboxListenerOptions = {
  url: string;
  /** Called on every notification, and after each (re)connection since notifications may have been missed. */
  onNotify: () => void;
  onError?: (error: unknown) => void;
  /** Longest wait between reconnection attempts. */
  maxRetryMs?: number;
};

/**
 * Holds a dedicated PostgreSQL connection that LISTENs on the outbox channel, reconnecting with
 * backoff when it drops. Only a latency optimisation: the relay polls anyway.
 */
export function listenForOutboxEvents(options: OutboxListenerOptions): { stop: () => Promise<void> } {
  const maxRetryMs = options.maxRetryMs ?? 30_000;
  let client: pg.Client | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let stopped = false;

  const retryLater = (error: unknown) => {
    if (stopped) return;
    options.onError?.(error);
    failures += 1;
    retryTimer = setTimeout(() => void listen(), Math.min(maxRetryMs, 500 * 2 ** (failures - 1)));
  };

  const listen = async () => {
    const current = new pg.Client({ connectionString: options.url });
    client = current;
    let lost = false;
    const onLost = (error: unknown) => {
      if (lost) return;
      lost = true;
      current.end().catch(() => {});
      retryLater(error);
    };
    current.on("error", onLost);
    current.on("end", () => onLost(new Error("LISTEN connection ended")));
    current.on("notification", (message) => {
      if (message.channel === OUTBOX_CHANNEL) options.onNotify();
    });
    try {
      await current.connect();
      await current.query(`LISTEN ${OUTBOX_CHANNEL}`);
      failures = 0;
      options.onNotify();
    } catch (error) {
      onLost(error);
    }
  };
  void listen();

  return {
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => {});
    },
  };
}
