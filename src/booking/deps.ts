import type { Database } from "../db/database.ts";
import type { HoldExpiryCallbacks } from "../expiry/hold-expiry.ts";
import type { SeatLock } from "../seat-lock/seat-lock.ts";
import type { GroupCommitOptions } from "./group-commit.ts";
import type { RefusalMemo } from "./refusals.ts";
import type { SeatChangeHints } from "./seat-watch.ts";
import type { Telemetry } from "./telemetry.ts";

/** What the booking services need from the outside world. */
export type BookingDeps = {
  db: Database;
  reservationTtlSeconds: number;
  /** An extended hold ends at most this long after its creation (600 s when absent). */
  holdMaxSeconds?: number;
  /** Counters for /metrics; the no-op when absent. */
  telemetry?: Telemetry;
  /** Redis seat locks taken before the claim transaction; advisory locks inside it when absent. */
  seatLock?: SeatLock;
  /** Seats found taken a moment ago, refused from memory; every claim asks the lock when absent. */
  refusals?: RefusalMemo;
  /** Group commit of holds (claim-batch.ts); its defaults when absent. Read once per database. */
  claimBatch?: GroupCommitOptions;
  /** Group commit of payments (pay-batch.ts); as for holds. */
  paymentBatch?: GroupCommitOptions;
  /** Delayed expiry callbacks (QStash); the sweeper or Cron Trigger alone when absent. */
  holdExpiry?: HoldExpiryCallbacks;
  /** What tells live seat maps (`GET /sessions/:id/stream`) that seats may have changed; none, no streams. */
  seatChangeHints?: SeatChangeHints;
  /** Between heartbeats of an idle seat stream (15 s by default). */
  seatStreamHeartbeatMs?: number;
};

/** A result that may come from an earlier request with the same Idempotency-Key. */
export type Outcome<T> = { view: T; replayed: boolean };
