import type { Database } from "../db/database.ts";
import type { Telemetry } from "./telemetry.ts";

/** What the booking services need from the outside world. */
export type BookingDeps = {
  db: Database;
  reservationTtlSeconds: number;
  /** Counters for /metrics; the no-op when absent. */
  telemetry?: Telemetry;
};

/** A result that may come from an earlier request with the same Idempotency-Key. */
export type Outcome<T> = { view: T; replayed: boolean };
