import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../db/errors.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { notifyRelays } from "../events/outbox.ts";
import { claimSeats } from "./claim-statements.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { scheduleHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { enterSeatLease, lockSeats } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

export type HoldRequest = { userId: string; seatIds: string[] };

/**
 * Holds every requested seat for one user, or none. The exclusion constraint on claims is the
 * guarantee; the seat lock in front of it (Redis before the transaction, advisory try-locks inside
 * it) only turns concurrent buyers of one seat away at once instead of letting them queue on the
 * constraint. The reservation id is chosen first: it is the lock's owner token.
 */
export async function holdSeats(
  deps: BookingDeps,
  request: HoldRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const result = await attemptHold(deps, request, idempotency);
  const telemetry = deps.telemetry ?? noTelemetry;
  if (result.ok && !result.value.replayed) {
    telemetry.holdOutcome("created");
    notifyRelays(deps.db);
    await scheduleHoldExpiry(deps, result.value.view.id);
  } else if (!result.ok && result.error.code === "SEAT_UNAVAILABLE") {
    telemetry.holdOutcome("conflict");
  }
  return result;
}

/**
 * Seats found taken a moment ago are refused from memory. A request with an Idempotency-Key
 * skips that check: it may be the retry of the very hold that took them, and only the database
 * has its stored answer.
 */
async function attemptHold(
  deps: BookingDeps,
  request: HoldRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const seatIds = [...new Set(request.seatIds)].sort();
  const known = idempotency === undefined ? (deps.refusals?.refused(seatIds) ?? []) : [];
  if (known.length > 0) {
    (deps.telemetry ?? noTelemetry).lockAcquisition("memory", "conflict");
    return fail({ code: "SEAT_UNAVAILABLE", seatIds: known });
  }
  const result = await lockAndClaim(deps, seatIds, request.userId, idempotency);
  if (!result.ok && result.error.code === "SEAT_UNAVAILABLE") deps.refusals?.remember(result.error.seatIds);
  return result;
}

async function lockAndClaim(
  deps: BookingDeps,
  seatIds: string[],
  userId: string,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const reservationId = crypto.randomUUID();
  const locked = await lockSeats(deps, { seatIds, owner: reservationId }, idempotency !== undefined);
  if (!locked.ok) return locked;
  const lease = locked.value;
  const claim = { reservationId, userId, seatIds, ttlSeconds: deps.reservationTtlSeconds };
  let created = false;
  try {
    // Seats locked before the database and no key to record: the claim is one statement, one
    // round trip. An idempotency key or advisory locks must share its transaction.
    const result =
      idempotency === undefined && lease.backend !== "advisory"
        ? fresh(await claimSeats(deps.db, claim))
        : await deps.db.transaction(async (tx): Promise<Result<Outcome<ReservationView>>> => {
            if (idempotency) {
              const key = await takeIdempotencyKey(tx, idempotency);
              if (!key.ok) return key;
              if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
            }
            const lost = await enterSeatLease(deps, lease, tx);
            if (lost.length > 0) return fail({ code: "SEAT_UNAVAILABLE", seatIds: lost });
            const claimed = await claimSeats(tx, claim);
            if (claimed.ok && idempotency) await rememberResponse(tx, idempotency, claimed.value);
            return fresh(claimed);
          });
    created = result.ok && !result.value.replayed;
    return result;
  } catch (error) {
    // A concurrent claim committed between our check and our insert: the constraint refused ours.
    if (sqlState(error) !== EXCLUSION_VIOLATION) throw error;
    return fail({ code: "SEAT_UNAVAILABLE", seatIds: await takenSeats(deps.db, seatIds) });
  } finally {
    // The lock stays with the new hold (until paid, cancelled or expired); otherwise it goes now.
    if (!created) {
      deps.refusals?.forget(seatIds);
      await lease.release();
    }
  }
}

function fresh(claimed: Result<ReservationView>): Result<Outcome<ReservationView>> {
  return claimed.ok ? ok({ view: claimed.value, replayed: false }) : claimed;
}

async function takenSeats(db: Executor, seatIds: string[]): Promise<string[]> {
  const rows = await queryRows<{ seat_id: string }>(
    db,
    sql`SELECT seat_id FROM reservation_seats WHERE seat_id = ANY(${uuidArray(seatIds)}) AND claim && tstzrange(now(), 'infinity')`,
  );
  return rows.length > 0 ? rows.map((row) => row.seat_id) : seatIds;
}
