import { sql } from "drizzle-orm";
import type { Database } from "../db/database.ts";
import { withDeadline } from "../deadline.ts";
import { claimPendingEvents, markPublished, pruneOutbox } from "./outbox-queries.ts";
import type { EventPublisher } from "./publisher.ts";
import { keepReservationOrder, publishInOrder } from "./relay-order.ts";

/**
 * The outbox relay: publishes committed outbox rows to the broker and marks them published once
 * the broker confirmed them. Runtime-neutral: the broker is an `EventPublisher` and wake-ups come
 * from whoever calls `wake()` (a PostgreSQL LISTEN on Node); polling covers lost notifications.
 *
 * Each batch is one transaction: claim rows (FOR UPDATE SKIP LOCKED, so relays never publish the
 * same row at the same time), publish, mark the confirmed ones, commit. A relay that dies
 * mid-batch loses its locks with its connection and the rows go out again: delivery is
 * at-least-once, consumers deduplicate by messageId.
 */

export type RelayOptions = {
  db: Database;
  publisher: EventPublisher;
  /** Rows claimed per transaction. */
  batchSize?: number;
  /** How often to look for rows when no notification came. */
  pollIntervalMs?: number;
  /** How long to wait for the broker's confirms of one round before giving the batch up. */
  confirmTimeoutMs?: number;
  /** Delay after the first failure, doubled per further failure up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** How long `stop()` waits for the batch in flight. */
  stopGraceMs?: number;
  /** How long published rows are kept before the relay prunes them. */
  retentionMs?: number;
  pruneIntervalMs?: number;
  onError?: (error: unknown, retry: { failures: number; delayMs: number }) => void;
  onPublished?: (count: number) => void;
};

export type RelayStatus = {
  brokerConnected: boolean;
  /** Failures since the last successful pass; 0 when healthy. */
  consecutiveFailures: number;
  lastError: string | undefined;
  published: number;
};

export type Relay = {
  /** New rows may be waiting: look now instead of at the next poll. */
  wake(): void;
  status(): RelayStatus;
  /**
   * Lets the batch in flight finish for up to `stopGraceMs`, then returns. Closing the publisher is
   * the caller's business; a batch still waiting on the broker then fails and its rows go out
   * again later (at least once), instead of holding the stop for a whole confirm timeout.
   */
  stop(): Promise<void>;
};

export type BatchResult = {
  /** Rows locked, whether or not they could go out in order. */
  claimed: number;
  published: number;
  failure?: unknown;
};

/** The broker refused, lost or did not confirm a message (as opposed to a database failure). */
class PublishFailure extends Error {
  override name = "PublishFailure";
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** Longest a relay's transaction may sit idle (waiting on the broker) before PostgreSQL ends it. */
const IDLE_IN_TRANSACTION_LIMIT_MS = 60_000;
/** Retry delay when rows are held by another relay: it commits within one batch. */
const CONTENDED_RETRY_MS = 50;

/** Claims, publishes and marks one batch in one transaction. */
export async function relayBatch(
  db: Database,
  publisher: EventPublisher,
  options: { batchSize: number; confirmTimeoutMs: number },
): Promise<BatchResult> {
  return db.transaction(async (tx) => {
    await tx.execute(
      sql`SELECT set_config('idle_in_transaction_session_timeout', ${String(IDLE_IN_TRANSACTION_LIMIT_MS)}, true)`,
    );
    const claimed = await claimPendingEvents(tx, options.batchSize);
    const inOrder = keepReservationOrder(claimed);
    const { confirmed, failure } = await publishInOrder(publisher, inOrder, options.confirmTimeoutMs);
    await markPublished(tx, confirmed);
    return { claimed: claimed.length, published: confirmed.length, failure };
  });
}

export function startRelay(options: RelayOptions): Relay {
  const batchSize = options.batchSize ?? 200;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
  const backoff = options.backoff ?? { initialMs: 250, maxMs: 30_000 };
  const retentionMs = options.retentionMs ?? 24 * 60 * 60 * 1000;
  const pruneIntervalMs = options.pruneIntervalMs ?? 60 * 60 * 1000;
  const stopGraceMs = options.stopGraceMs ?? 2_000;
  const { db, publisher } = options;

  const status: RelayStatus = {
    brokerConnected: false,
    consecutiveFailures: 0,
    lastError: undefined,
    published: 0,
  };
  let stopped = false;
  let woken = false;
  let lastPrune = 0;
  let interruptSleep: (() => void) | undefined;
  let sleepIsWakeable = false;

  const sleep = (ms: number, wakeable: boolean) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        interruptSleep = undefined;
        resolve();
      }
      interruptSleep = done;
      sleepIsWakeable = wakeable;
    });

  /** Publishes until the outbox is drained; answers whether rows were left to another relay. */
  const drain = async (): Promise<{ contended: boolean }> => {
    for (;;) {
      const batch = await relayBatch(db, publisher, { batchSize, confirmTimeoutMs });
      status.published += batch.published;
      if (batch.published > 0) options.onPublished?.(batch.published);
      if (batch.failure !== undefined) throw new PublishFailure(batch.failure);
      if (batch.claimed > batch.published) return { contended: true };
      if (batch.claimed < batchSize || stopped) return { contended: false };
    }
  };

  const run = async () => {
    while (!stopped) {
      woken = false;
      try {
        await publisher.ready();
        status.brokerConnected = true;
        const { contended } = await drain();
        if (Date.now() - lastPrune >= pruneIntervalMs) {
          await pruneOutbox(db, retentionMs);
          lastPrune = Date.now();
        }
        status.consecutiveFailures = 0;
        status.lastError = undefined;
        if (!stopped && !woken) await sleep(contended ? CONTENDED_RETRY_MS : pollIntervalMs, true);
      } catch (error) {
        status.consecutiveFailures += 1;
        status.lastError = error instanceof Error ? error.message : String(error);
        const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (status.consecutiveFailures - 1));
        const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
        options.onError?.(error, { failures: status.consecutiveFailures, delayMs });
        // A failed publish may leave a broken channel behind; the next attempt starts on a fresh one.
        if (error instanceof PublishFailure) await publisher.reset().catch(() => {});
        status.brokerConnected = publisher.isConnected();
        if (!stopped) await sleep(delayMs, false);
      }
    }
  };
  const running = run();

  return {
    wake() {
      woken = true;
      if (sleepIsWakeable) interruptSleep?.();
    },
    status: () => ({ ...status, brokerConnected: status.brokerConnected && publisher.isConnected() }),
    async stop() {
      stopped = true;
      interruptSleep?.();
      await withDeadline(running, stopGraceMs, "relay batch still in flight").catch(() => {});
    },
  };
}
