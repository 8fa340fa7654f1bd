import type { Executor } from "../db/database.ts";
import type { BookingDeps, Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { holdSeats } from "./hold.ts";
import { type IdempotencyRequest, storedResponse } from "./idempotency.ts";
import { readSeatMap } from "./sessions.ts";
import type { ReservationView, SeatView } from "./views.ts";

/**
 * "Best available" seats, picked the way seats.io describes its algorithm: first a block of
 * adjacent seats in one row that leaves no single seat stranded beside it, closest to the focal
 * point (the centre of the front row, row A); then an adjacent block that may strand one; then the
 * seats nearest the focal point across rows. The pick is held through the same claim path as named
 * seats, so the exclusion constraint decides as always.
 */

export type SeatPick = { seatIds: string[]; kind: "adjacent" | "adjacent-orphan" | "scattered" };

type GridSeat = { id: string; rowIndex: number; number: number; category: string; free: boolean };

/** Seats of the map by row (in row order), each row by seat number. */
function gridOf(seats: readonly SeatView[], excluded: ReadonlySet<string>): GridSeat[][] {
  const rows = new Map<string, GridSeat[]>();
  for (const seat of seats) {
    let row = rows.get(seat.row);
    if (!row) {
      row = [];
      rows.set(seat.row, row);
    }
    row.push({
      id: seat.id,
      rowIndex: rows.size - 1,
      number: seat.number,
      category: seat.category,
      free: seat.status === "AVAILABLE" && !excluded.has(seat.id),
    });
  }
  return [...rows.values()].map((row) => row.sort((a, b) => a.number - b.number));
}

/** The best seats for `quantity` buyers, or undefined when fewer than `quantity` are free. */
export function pickBestSeats(
  seats: readonly SeatView[],
  request: { quantity: number; category?: string; excluded?: ReadonlySet<string> },
): SeatPick | undefined {
  const { quantity, category } = request;
  const grid = gridOf(seats, request.excluded ?? new Set());
  const wanted = (seat: GridSeat) => seat.free && (category === undefined || seat.category === category);
  const blocks: { seats: GridSeat[]; orphan: boolean; distance: number }[] = [];
  for (const row of grid) {
    const centre = ((row[0]?.number ?? 1) + (row.at(-1)?.number ?? 1)) / 2;
    // Runs of free seats (of any category): a seat left alone in a run is stranded.
    for (let start = 0; start < row.length; ) {
      if (!row[start]?.free) {
        start++;
        continue;
      }
      let end = start;
      while (end + 1 < row.length && row[end + 1]?.free && adjacent(row[end], row[end + 1])) end++;
      for (let first = start; first + quantity - 1 <= end; first++) {
        const block = row.slice(first, first + quantity);
        if (!block.every(wanted)) continue;
        const left = first - start;
        const right = end - (first + quantity - 1);
        const middle = ((block[0]?.number ?? 0) + (block.at(-1)?.number ?? 0)) / 2;
        blocks.push({
          seats: block,
          orphan: left === 1 || right === 1,
          distance: Math.hypot(block[0]?.rowIndex ?? 0, middle - centre),
        });
      }
      start = end + 1;
    }
  }
  const nearest = (candidates: typeof blocks) =>
    candidates.reduce<(typeof blocks)[number] | undefined>(
      (best, block) => (best === undefined || block.distance < best.distance ? block : best),
      undefined,
    );
  const clean = nearest(blocks.filter((block) => !block.orphan));
  if (clean) return { seatIds: clean.seats.map((seat) => seat.id), kind: "adjacent" };
  const any = nearest(blocks);
  if (any) return { seatIds: any.seats.map((seat) => seat.id), kind: "adjacent-orphan" };
  const free = grid.flatMap((row) => {
    const centre = ((row[0]?.number ?? 1) + (row.at(-1)?.number ?? 1)) / 2;
    return row
      .filter(wanted)
      .map((seat) => ({ seat, distance: Math.hypot(seat.rowIndex, seat.number - centre) }));
  });
  if (free.length < quantity) return undefined;
  free.sort((a, b) => a.distance - b.distance);
  return { seatIds: free.slice(0, quantity).map(({ seat }) => seat.id), kind: "scattered" };
}

function adjacent(a: GridSeat | undefined, b: GridSeat | undefined): boolean {
  return a !== undefined && b !== undefined && b.number === a.number + 1;
}

/** How many picks one request tries when other buyers keep winning its seats. */
export const BEST_AVAILABLE_ATTEMPTS = 8;

/** How long seats just won stay out of this instance's picks, until every map read shows them held. */
const WON_SEATS_MEMORY_MS = 2_000;

/**
 * Seats that best-available requests of this instance are claiming right now, and seats they have
 * just won, per database and session: concurrent buyers on one instance are handed disjoint seats
 * instead of all racing for the same best block. Buyers on other instances can still collide; the
 * loser tries its next best pick.
 */
type Promised = { claiming: Set<string>; won: Set<string> };

const promised = new WeakMap<object, Map<string, Promised>>();

function promisedSeats(db: Executor, sessionId: string): Promised {
  let sessions = promised.get(db);
  if (!sessions) {
    sessions = new Map();
    promised.set(db, sessions);
  }
  let seats = sessions.get(sessionId);
  if (!seats) {
    seats = { claiming: new Set(), won: new Set() };
    sessions.set(sessionId, seats);
  }
  return seats;
}

export type BestAvailableRequest = { userId: string; sessionId: string; quantity: number; category?: string };

/**
 * Holds the best `quantity` seats of a session (of one category when given); a request whose
 * Idempotency-Key was used before is answered from it before any pick. When another buyer
 * wins one of the picked seats first, the next best pick is tried, at most
 * BEST_AVAILABLE_ATTEMPTS times; NOT_ENOUGH_SEATS when no pick exists, SEATS_CONTENDED when every
 * attempt lost.
 */
export async function holdBestAvailable(
  deps: BookingDeps,
  request: BestAvailableRequest,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<ReservationView>>> {
  const { sessionId, quantity, category } = request;
  if (idempotency) {
    const stored = await storedResponse(deps.db, idempotency);
    if (stored && !stored.ok) return stored;
    if (stored?.ok) return ok({ view: stored.value.storedResponse as ReservationView, replayed: true });
  }
  const lost = new Set<string>();
  const seats = promisedSeats(deps.db, sessionId);
  for (let attempt = 1; attempt <= BEST_AVAILABLE_ATTEMPTS; attempt++) {
    const map = await readSeatMap(deps.db, sessionId);
    if (!map) return fail({ code: "SESSION_NOT_FOUND", sessionId });
    if (category !== undefined && !map.seats.some((seat) => seat.category === category)) {
      return fail({ code: "CATEGORY_NOT_FOUND", sessionId, category });
    }
    const excluded = new Set([...seats.claiming, ...seats.won, ...lost]);
    const pick = pickBestSeats(map.seats, { quantity, category, excluded });
    if (!pick) {
      // Seats other requests here are still claiming come free again if those claims fail.
      if (seats.claiming.size === 0) return fail({ code: "NOT_ENOUGH_SEATS", sessionId, quantity, category });
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
      continue;
    }
    for (const id of pick.seatIds) seats.claiming.add(id);
    const held = await holdSeats(
      deps,
      { userId: request.userId, seatIds: pick.seatIds },
      idempotency,
    ).finally(() => {
      for (const id of pick.seatIds) seats.claiming.delete(id);
    });
    if (held.ok) {
      for (const id of pick.seatIds) seats.won.add(id);
      setTimeout(() => {
        for (const id of pick.seatIds) seats.won.delete(id);
      }, WON_SEATS_MEMORY_MS);
      return held;
    }
    if (held.error.code !== "SEAT_UNAVAILABLE") return held;
    for (const id of held.error.seatIds) lost.add(id);
  }
  return fail({ code: "SEATS_CONTENDED", sessionId, quantity, attempts: BEST_AVAILABLE_ATTEMPTS });
}
