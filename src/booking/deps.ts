import type { Database } from "../db/database.ts";

/** What the booking services need from the outside world. */
export type BookingDeps = {
  db: Database;
  reservationTtlSeconds: number;
};

/** A result that may come from an earlier request with the same Idempotency-Key. */
export type Outcome<T> = { view: T; replayed: boolean };
