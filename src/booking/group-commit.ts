import type { Executor } from "../db/database.ts";
import { ROLLED_BACK, sqlState } from "../db/errors.ts";
import type { IdempotencyRequest } from "./idempotency.ts";

/**
 * Group commit, per database (one pool), for any statement that takes a batch of items and
 * answers one outcome per item, in order: an item that arrives while `maxInFlight` batches are in
 * flight waits for the next batch, and the items waiting then go together in one statement and
 * one transaction, at most `maxItems` at a time. Nothing waits on a timer: on an idle service an
 * item is sent at once, alone. The statement keeps each item all-or-nothing and independent (a
 * subtransaction each, in the database); an item is answered only when the batch's statement has
 * returned, i.e. after its commit.
 *
 * An item, or a whole batch, that failed on a deadlock or a serialization failure rolled back and
 * is sent again (in a later batch, up to MAX_ATTEMPTS times); anything else that makes a whole
 * batch fail (a lost connection) rejects every item of it with that error: none is answered as
 * a success, and the route answers 503 where the database was unreachable.
 */

export type GroupCommitOptions = {
  /** Items per statement at most. */
  maxItems?: number;
  /** Batches in flight at once on this database at most. */
  maxInFlight?: number;
};

/** What an item's own failure in the database was (its subtransaction rolled back). */
export type ItemFailure = { sqlState: string; message: string };

/** The statement a group commit sends, and how to read its answers. */
export type BatchStatement<Item, Outcome> = {
  /** Sends one batch; one outcome per item, in the items' order. Throws when the batch failed whole. */
  send(db: Executor, items: readonly Item[]): Promise<Outcome[]>;
  /** The item's own failure, when its outcome is one. */
  failureOf(outcome: Outcome): ItemFailure | undefined;
  /**
   * Items that cannot share one transaction (two with one idempotency key: in one transaction the
   * key's lock does not exclude its own holder): the later one is answered `duplicate.outcome`.
   */
  duplicate?: { keyOf(item: Item): string | undefined; outcome: Outcome };
};

export type GroupCommit<Item, Outcome> = {
  /** Sends one item with whatever other items are waiting on this database. */
  submit(db: Executor, item: Item, options?: GroupCommitOptions): Promise<Outcome>;
  /** Items waiting for a batch on this database (not those in flight); for tests that build batches. */
  waiting(db: Executor): number;
};

export const GROUP_COMMIT_DEFAULTS = { maxItems: 64, maxInFlight: 4 } as const;

const MAX_ATTEMPTS = 3;

/** Error of an item that failed on its own; `code` is the SQLSTATE, as drivers report it. */
export class ItemFailed extends Error {
  override name = "ItemFailed";
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

type Waiting<Item, Outcome> = {
  item: Item;
  attempts: number;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
};

type Batcher<Item, Outcome> = {
  queue: Waiting<Item, Outcome>[];
  inFlight: number;
  maxItems: number;
  maxInFlight: number;
};

export function groupCommit<Item, Outcome>(
  statement: BatchStatement<Item, Outcome>,
): GroupCommit<Item, Outcome> {
  const batchers = new WeakMap<object, Batcher<Item, Outcome>>();

  function batcherOf(db: Executor, options: GroupCommitOptions): Batcher<Item, Outcome> {
    let batcher = batchers.get(db);
    if (!batcher) {
      batcher = {
        queue: [],
        inFlight: 0,
        maxItems: Math.max(1, options.maxItems ?? GROUP_COMMIT_DEFAULTS.maxItems),
        maxInFlight: Math.max(1, options.maxInFlight ?? GROUP_COMMIT_DEFAULTS.maxInFlight),
      };
      batchers.set(db, batcher);
    }
    return batcher;
  }

  function pump(db: Executor, batcher: Batcher<Item, Outcome>): void {
    while (batcher.inFlight < batcher.maxInFlight && batcher.queue.length > 0) {
      const batch = takeBatch(batcher);
      if (batch.length === 0) continue;
      batcher.inFlight++;
      void run(db, batcher, batch).finally(() => {
        batcher.inFlight--;
        pump(db, batcher);
      });
    }
  }

  function takeBatch(batcher: Batcher<Item, Outcome>): Waiting<Item, Outcome>[] {
    const batch: Waiting<Item, Outcome>[] = [];
    const keys = new Set<string>();
    while (batch.length < batcher.maxItems && batcher.queue.length > 0) {
      const waiting = batcher.queue.shift() as Waiting<Item, Outcome>;
      const key = statement.duplicate?.keyOf(waiting.item);
      if (key !== undefined && statement.duplicate) {
        if (keys.has(key)) {
          waiting.resolve(statement.duplicate.outcome);
          continue;
        }
        keys.add(key);
      }
      batch.push(waiting);
    }
    return batch;
  }

  async function run(db: Executor, batcher: Batcher<Item, Outcome>, batch: Waiting<Item, Outcome>[]) {
    let outcomes: Outcome[];
    try {
      outcomes = await statement.send(
        db,
        batch.map((waiting) => waiting.item),
      );
    } catch (error) {
      const state = sqlState(error);
      for (const waiting of batch) {
        if (state !== undefined && ROLLED_BACK.has(state)) retryOrReject(batcher, waiting, error);
        else waiting.reject(error);
      }
      return;
    }
    for (const [index, waiting] of batch.entries()) {
      const outcome = outcomes[index] as Outcome;
      const failure = statement.failureOf(outcome);
      if (!failure) {
        waiting.resolve(outcome);
        continue;
      }
      const error = new ItemFailed(failure.sqlState, failure.message);
      if (ROLLED_BACK.has(failure.sqlState)) retryOrReject(batcher, waiting, error);
      else waiting.reject(error);
    }
  }

  /** Back to the front of the queue; the next batch starts when this one's slot is free. */
  function retryOrReject(batcher: Batcher<Item, Outcome>, waiting: Waiting<Item, Outcome>, error: unknown) {
    waiting.attempts++;
    if (waiting.attempts >= MAX_ATTEMPTS) waiting.reject(error);
    else batcher.queue.unshift(waiting);
  }

  return {
    submit(db, item, options = {}) {
      const batcher = batcherOf(db, options);
      return new Promise<Outcome>((resolve, reject) => {
        batcher.queue.push({ item, attempts: 0, resolve, reject });
        pump(db, batcher);
      });
    },
    waiting: (db) => batchers.get(db)?.queue.length ?? 0,
  };
}

/** How the statements of holds and payments answer an item that failed on its own. */
type FailedOutcome = { outcome: "failed"; sqlState: string; message: string };

const isFailed = (outcome: { outcome: string }): outcome is FailedOutcome => outcome.outcome === "failed";

/**
 * The group commit of holds and of payments: items that may carry an Idempotency-Key, sent by a
 * statement that answers an item's own failure `failed` with its SQLSTATE. Of two items with one
 * key in a batch the later is answered `keyInUse`; a failed item is rejected with `ItemFailed`,
 * its message led by `what` ("claim", "payment").
 */
export function keyedGroupCommit<
  Item extends { idempotency?: IdempotencyRequest },
  Outcome extends { outcome: string },
>(what: string, send: BatchStatement<Item, Outcome>["send"], keyInUse: Outcome): GroupCommit<Item, Outcome> {
  return groupCommit<Item, Outcome>({
    send,
    failureOf: (outcome) =>
      isFailed(outcome)
        ? { sqlState: outcome.sqlState, message: `${what} failed: ${outcome.message}` }
        : undefined,
    duplicate: {
      keyOf: (item) => item.idempotency && `${item.idempotency.scope}\n${item.idempotency.key}`,
      outcome: keyInUse,
    },
  });
}
