import type { Executor } from "../db/database.ts";
import { sqlState } from "../db/errors.ts";
import { type ClaimOutcome, claimHolds, type HoldClaim } from "./claim-statements.ts";

/**
 * Group commit for holds, per database (one pool): a claim that arrives while `maxInFlight`
 * batches are in flight waits for the next batch, and the holds waiting then are claimed together
 * in one statement and one transaction, at most `maxHolds` at a time. Nothing waits on a timer:
 * on an idle service a claim is sent at once, alone. Each hold of a batch stays all-or-nothing
 * and independent (a subtransaction each, in the database), and is answered only when the
 * batch's statement has returned, i.e. after its commit.
 *
 * A hold, or a whole batch, that failed on a deadlock or a serialization failure rolled back and
 * is claimed again (in a later batch, up to MAX_ATTEMPTS times); anything else that makes a whole
 * batch fail (a lost connection) rejects every hold of it with that error: none is answered as
 * a success, and the route answers 503 where the database was unreachable.
 */

export type ClaimBatchOptions = {
  /** Holds per statement at most. */
  maxHolds?: number;
  /** Batches in flight at once on this database at most. */
  maxInFlight?: number;
};

/**
 * Four batches in flight overlap one batch's commit flush with the next ones' work, and leave
 * most of a pool of 10 to reads and payments. Measured on the bench's spread (2 cores, loaded):
 * 764-853 holds/s with 2 in flight, 999 with 4, in runs whose ceilings were alike.
 */
export const CLAIM_BATCH_DEFAULTS = { maxHolds: 64, maxInFlight: 4 } as const;

const MAX_ATTEMPTS = 3;
/** deadlock_detected, serialization_failure: the transaction rolled back; trying again is safe. */
const RETRYABLE = new Set(["40P01", "40001"]);

type Waiting = {
  claim: HoldClaim;
  attempts: number;
  resolve(outcome: ClaimOutcome): void;
  reject(error: unknown): void;
};

type Batcher = { queue: Waiting[]; inFlight: number; maxHolds: number; maxInFlight: number };

const batchers = new WeakMap<object, Batcher>();

/** Error of a hold whose claim failed on its own; `code` is the SQLSTATE, as drivers report it. */
export class ClaimFailed extends Error {
  override name = "ClaimFailed";
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Claims one hold with whatever other holds are waiting on this database. */
export function claimInBatch(
  db: Executor,
  claim: HoldClaim,
  options: ClaimBatchOptions = {},
): Promise<ClaimOutcome> {
  const batcher = batcherOf(db, options);
  return new Promise<ClaimOutcome>((resolve, reject) => {
    batcher.queue.push({ claim, attempts: 0, resolve, reject });
    pump(db, batcher);
  });
}

/** Holds waiting for a batch on this database (not those in flight); for tests that build batches. */
export function waitingClaims(db: Executor): number {
  return batchers.get(db)?.queue.length ?? 0;
}

function batcherOf(db: Executor, options: ClaimBatchOptions): Batcher {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = {
      queue: [],
      inFlight: 0,
      maxHolds: Math.max(1, options.maxHolds ?? CLAIM_BATCH_DEFAULTS.maxHolds),
      maxInFlight: Math.max(1, options.maxInFlight ?? CLAIM_BATCH_DEFAULTS.maxInFlight),
    };
    batchers.set(db, batcher);
  }
  return batcher;
}

function pump(db: Executor, batcher: Batcher): void {
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

/**
 * The next batch. Two holds with the same idempotency key cannot share one (in one transaction
 * the key's lock does not exclude its own holder): the later one is answered as a key in use.
 */
function takeBatch(batcher: Batcher): Waiting[] {
  const batch: Waiting[] = [];
  const keys = new Set<string>();
  while (batch.length < batcher.maxHolds && batcher.queue.length > 0) {
    const waiting = batcher.queue.shift() as Waiting;
    const idempotency = waiting.claim.idempotency;
    if (idempotency) {
      const key = `${idempotency.scope}\n${idempotency.key}`;
      if (keys.has(key)) {
        waiting.resolve({ outcome: "key_in_use" });
        continue;
      }
      keys.add(key);
    }
    batch.push(waiting);
  }
  return batch;
}

async function run(db: Executor, batcher: Batcher, batch: Waiting[]): Promise<void> {
  let outcomes: ClaimOutcome[];
  try {
    outcomes = await claimHolds(
      db,
      batch.map((waiting) => waiting.claim),
    );
  } catch (error) {
    const state = sqlState(error);
    for (const waiting of batch) {
      if (state !== undefined && RETRYABLE.has(state)) retryOrReject(batcher, waiting, error);
      else waiting.reject(error);
    }
    return;
  }
  for (const [index, waiting] of batch.entries()) {
    const outcome = outcomes[index] as ClaimOutcome;
    if (outcome.outcome !== "failed") {
      waiting.resolve(outcome);
      continue;
    }
    const error = new ClaimFailed(outcome.sqlState, `claim failed: ${outcome.message}`);
    if (RETRYABLE.has(outcome.sqlState)) retryOrReject(batcher, waiting, error);
    else waiting.reject(error);
  }
}

/** Back to the front of the queue; the next batch starts when this one's slot is free. */
function retryOrReject(batcher: Batcher, waiting: Waiting, error: unknown): void {
  waiting.attempts++;
  if (waiting.attempts >= MAX_ATTEMPTS) waiting.reject(error);
  else batcher.queue.unshift(waiting);
}
