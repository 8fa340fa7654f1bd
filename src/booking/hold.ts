import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { EXCLUSION_VIOLATION, sqlState } from "../db/errors.ts";
import { isoTime, uuidArray } from "../db/sql-helpers.ts";
import { appendEvents } from "../events/outbox.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { scheduleHoldExpiry } from "./expiry-callbacks.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { fromCents } from "./money.ts";
import { enterSeatLease, lockSeats } from "./seat-locks.ts";
import { noTelemetry } from "./telemetry.ts";
import type { ReservationView } from "./views.ts";

export type HoldRequest = { userId: string; seatIds: string[] };

type SeatCheck = {
  id: string;
  session_id: string;
  row: string;
  number: number;
  label: string;
  price_cents: number;
  taken: boolean;
};

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
  if (result.ok && !result.value.replayed) telemetry.holdOutcome("created");
  else if (!result.ok && result.error.code === "SEAT_UNAVAILABLE") telemetry.holdOutcome("conflict");
  if (result.ok && !result.value.replayed) await scheduleHoldExpiry(deps, result.value.view.id);
  return result;
}

async function attemptHold(
  deps: BookingDeps,
  request: HoldRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const seatIds = [...new Set(request.seatIds)].sort();
  const reservationId = crypto.randomUUID();
  const locked = await lockSeats(deps, { seatIds, owner: reservationId }, idempotency !== undefined);
  if (!locked.ok) return locked;
  let created = false;
  try {
    const result = await deps.db.transaction(async (tx): Promise<Result<Outcome<ReservationView>>> => {
      if (idempotency) {
        const key = await takeIdempotencyKey(tx, idempotency);
        if (!key.ok) return key;
        if (key.value) return ok({ view: key.value.storedResponse as ReservationView, replayed: true });
      }
      const lost = await enterSeatLease(deps, locked.value, tx);
      if (lost.length > 0) return fail({ code: "SEAT_UNAVAILABLE", seatIds: lost });
      const checked = await checkSeats(tx, seatIds);
      if (!checked.ok) return checked;
      const view = await claimSeats(
        tx,
        reservationId,
        deps.reservationTtlSeconds,
        request.userId,
        checked.value,
      );
      await appendEvents(tx, view.id, [
        {
          type: "reservation.created",
          data: {
            reservationId: view.id,
            sessionId: view.sessionId,
            userId: view.userId,
            seatIds: view.seatIds,
            totalPrice: view.totalPrice,
            expiresAt: view.expiresAt,
          },
        },
      ]);
      if (idempotency) await rememberResponse(tx, idempotency, view);
      return ok({ view, replayed: false });
    });
    created = result.ok && !result.value.replayed;
    return result;
  } catch (error) {
    // A concurrent claim committed between our check and our insert: the constraint refused ours.
    if (sqlState(error) !== EXCLUSION_VIOLATION) throw error;
    return fail({ code: "SEAT_UNAVAILABLE", seatIds: await takenSeats(deps.db, seatIds) });
  } finally {
    // The lock stays with the new hold (until paid, cancelled or expired); otherwise it goes now.
    if (!created) await locked.value.release();
  }
}

async function checkSeats(tx: Executor, seatIds: string[]): Promise<Result<SeatCheck[]>> {
  const seats = await queryRows<SeatCheck>(
    tx,
    sql`
      SELECT s.id, s.session_id, s."row", s."number", s.label, se.price_cents,
        EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.seat_id = s.id AND upper(rs.claim) > now()) AS taken
      FROM seats s JOIN sessions se ON se.id = s.session_id
      WHERE s.id = ANY(${uuidArray(seatIds)})
      ORDER BY s.position`,
  );
  const found = new Set(seats.map((seat) => seat.id));
  const missing = seatIds.filter((id) => !found.has(id));
  if (missing.length > 0) return fail({ code: "SEAT_NOT_FOUND", seatIds: missing });
  const sessionIds = [...new Set(seats.map((seat) => seat.session_id))];
  if (sessionIds.length > 1) return fail({ code: "SEATS_FROM_MULTIPLE_SESSIONS", sessionIds });
  const unavailable = seats.filter((seat) => seat.taken).map((seat) => seat.id);
  if (unavailable.length > 0) return fail({ code: "SEAT_UNAVAILABLE", seatIds: unavailable });
  return ok(seats);
}

/** Writes the reservation and its claims in one statement; seats are inserted in sorted order. */
async function claimSeats(
  tx: Executor,
  reservationId: string,
  ttlSeconds: number,
  userId: string,
  seats: SeatCheck[],
): Promise<ReservationView> {
  const first = seats[0];
  if (!first) throw new Error("claimSeats needs at least one seat");
  const totalCents = seats.reduce((sum, seat) => sum + Number(seat.price_cents), 0);
  const [reservation] = await queryRows<{ id: string; expires_at: string; created_at: string }>(
    tx,
    sql`
      WITH reservation AS (
        INSERT INTO reservations (id, session_id, user_id, total_cents, expires_at)
        VALUES (${reservationId}::uuid, ${first.session_id}::uuid, ${userId}, ${totalCents}, now() + make_interval(secs => ${ttlSeconds}))
        RETURNING id, expires_at, created_at
      ), claims AS (
        INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
        SELECT reservation.id, seat.id, ${first.session_id}::uuid, tstzrange(now(), reservation.expires_at)
        FROM reservation, unnest(${uuidArray(seats.map((seat) => seat.id))}) AS seat(id)
        ORDER BY seat.id
      )
      SELECT id, ${isoTime(sql`expires_at`)} AS expires_at, ${isoTime(sql`created_at`)} AS created_at
      FROM reservation`,
  );
  if (!reservation) throw new Error("reservation insert returned no row");
  const reserved = seats.map(({ id, row, number, label }) => ({ id, row, number: Number(number), label }));
  return {
    id: reservation.id,
    sessionId: first.session_id,
    userId,
    status: "PENDING",
    seatIds: reserved.map((seat) => seat.id),
    seats: reserved,
    totalPrice: fromCents(totalCents),
    expiresAt: reservation.expires_at,
    createdAt: reservation.created_at,
    sale: null,
  };
}

async function takenSeats(db: Executor, seatIds: string[]): Promise<string[]> {
  const rows = await queryRows<{ seat_id: string }>(
    db,
    sql`SELECT seat_id FROM reservation_seats WHERE seat_id = ANY(${uuidArray(seatIds)}) AND upper(claim) > now()`,
  );
  return rows.length > 0 ? rows.map((row) => row.seat_id) : seatIds;
}
