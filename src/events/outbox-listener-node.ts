import pg from "pg";
import { withDeadline } from "../deadline.ts";
import { OUTBOX_CHANNEL } from "./outbox.ts";

export type OutboxListenerOptions = {
  url: string;
  /** Called on every notification, and after each (re)connection since notifications may have been missed. */
  onNotify: () => void;
  onError?: (error: unknown) => void;
  /** Longest wait between reconnection attempts. */
  maxRetryMs?: number;
};

/** Bounds on the LISTEN connection's waits: a silent server must not hold a retry or a stop. */
const CONNECT_TIMEOUT_MS = 5_000;
const END_TIMEOUT_MS = 2_000;

/** Ends a client at once; `end()` waits for the server to close its side, which a dead path never does. */
function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

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
    const current = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
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
      const current = client;
      if (!current) return;
      await withDeadline(current.end(), END_TIMEOUT_MS, "LISTEN connection did not end", {
        onExpired: () => destroy(current),
      }).catch(() => destroy(current));
    },
  };
}
