import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { fail, ok, type Result } from "./errors.ts";

/**
 * What the service knows about seats, per database: each seat's session, row, number, label,
 * position, category and price. Seats and prices never change once a session exists, so an
 * entry never goes stale and a full catalogue simply starts over. A hold needs this twice: the
 * Redis lock keys carry the session as hash tag, and the answer (labels, total price) is built
 * here instead of in the claim statement, which then only decides who gets the seats. A
 * payment's answer is built from it too (seatsById).
 *
 * The first buyer of a seat reads it; concurrent buyers of the same seats share that read. When a
 * session misses a second time, or its seat map has just been read, its whole catalogue is loaded
 * in the background, once, so the next buyers of any of its seats need no read at all. (Where the
 * database object lives for one request, as on Workers, nothing misses twice and no map is loaded.)
 */

export type SeatInfo = {
  id: string;
  sessionId: string;
  row: string;
  number: number;
  label: string;
  position: number;
  category: string;
  priceCents: number;
};

/** The seats of one hold, all of one session, in seat-map order (position), and their total price. */
export type SeatSelection = { sessionId: string; totalCents: number; seats: SeatInfo[] };

const CATALOGUE_MAX_SEATS = 100_000;

type Catalogue = {
  seats: Map<string, SeatInfo>;
  /** Reads in flight, by seat set: a crowd arriving at once for the same seats waits for one. */
  reading: Map<string, Promise<Result<SeatSelection>>>;
  /** Sessions that missed once ("seen"), and those whose whole map is loaded or loading. */
  sessions: Map<string, "seen" | "loaded">;
};

const catalogues = new WeakMap<object, Catalogue>();

type SeatRow = {
  id: string;
  session_id: string;
  row: string;
  number: number;
  label: string;
  position: number;
  category: string;
  price_cents: number;
};

const SEAT_COLUMNS = sql`s.id::text AS id, s.session_id::text AS session_id, s."row", s."number", s.label, s.position, s.category, s.price_cents`;

/**
 * The seats `seatIds` (distinct) name, with their session and total price; SEAT_NOT_FOUND or
 * SEATS_FROM_MULTIPLE_SESSIONS otherwise. Synchronous when every seat is known.
 */
export function selectSeats(
  db: Executor,
  seatIds: readonly string[],
): Result<SeatSelection> | Promise<Result<SeatSelection>> {
  const catalogue = catalogueOf(db);
  const known = selectionOf(catalogue, seatIds);
  if (known) return ok(known);
  const key = seatIds.join(",");
  let read = catalogue.reading.get(key);
  if (!read) {
    read = readSeats(db, seatIds, catalogue).finally(() => catalogue.reading.delete(key));
    catalogue.reading.set(key, read);
  }
  return read;
}

/**
 * A seat map just read (for a buyer, or for a new session): its session's catalogue is loaded in
 * the background where this database already keeps one, so its buyers need no read.
 */
export function rememberSeatMap(db: Executor, sessionId: string, _seatIds: readonly string[]): void {
  const catalogue = catalogues.get(db);
  if (!catalogue || catalogue.sessions.get(sessionId) === "loaded") return;
  loadSession(db, sessionId, catalogue);
}

function catalogueOf(db: Executor): Catalogue {
  let catalogue = catalogues.get(db);
  if (!catalogue) {
    catalogue = { seats: new Map(), reading: new Map(), sessions: new Map() };
    catalogues.set(db, catalogue);
  }
  return catalogue;
}

function selectionOf(catalogue: Catalogue, seatIds: readonly string[]): SeatSelection | undefined {
  const seats: SeatInfo[] = [];
  for (const id of seatIds) {
    const seat = catalogue.seats.get(id);
    if (!seat || (seats[0] && seats[0].sessionId !== seat.sessionId)) return undefined;
    seats.push(seat);
  }
  const sessionId = seats[0]?.sessionId;
  if (sessionId === undefined) return undefined;
  if (seats.length > 1) seats.sort((a, b) => a.position - b.position);
  return { sessionId, totalCents: totalOf(seats), seats };
}

async function readSeats(
  db: Executor,
  seatIds: readonly string[],
  catalogue: Catalogue,
): Promise<Result<SeatSelection>> {
  const rows = await queryRows<SeatRow>(
    db,
    sql`SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.id = ANY(${uuidArray(seatIds)})`,
  );
  const found = new Set(rows.map((row) => row.id));
  const missing = seatIds.filter((id) => !found.has(id));
  if (missing.length > 0) return fail({ code: "SEAT_NOT_FOUND", seatIds: missing });
  const sessionIds = [...new Set(rows.map((row) => row.session_id))];
  if (sessionIds.length > 1) return fail({ code: "SEATS_FROM_MULTIPLE_SESSIONS", sessionIds });
  remember(catalogue, rows);
  const sessionId = sessionIds[0] as string;
  missedSession(db, sessionId, catalogue);
  const selection = selectionOf(catalogue, seatIds);
  if (selection) return ok(selection);
  // Only when the catalogue just started over: answer from the rows themselves.
  const seats = rows.map(toSeatInfo).sort((a, b) => a.position - b.position);
  return ok({ sessionId, totalCents: totalOf(seats), seats });
}

/**
 * The seats `seatIds` name, of any sessions, by id: those in memory, the others read with `via`
 * (a transaction in progress, whose connection a one-connection database would otherwise make a
 * read on `db` wait for). For seats already claimed; throws when one does not exist.
 */
export async function seatsById(
  db: Executor,
  seatIds: readonly string[],
  via: Executor = db,
): Promise<Map<string, SeatInfo>> {
  const catalogue = catalogueOf(db);
  const found = new Map<string, SeatInfo>();
  const missing: string[] = [];
  for (const id of seatIds) {
    const seat = catalogue.seats.get(id);
    if (seat) found.set(id, seat);
    else missing.push(id);
  }
  if (missing.length === 0) return found;
  const rows = await queryRows<SeatRow>(
    via,
    sql`SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.id = ANY(${uuidArray(missing)})`,
  );
  remember(catalogue, rows);
  for (const row of rows) found.set(row.id, toSeatInfo(row));
  for (const sessionId of new Set(rows.map((row) => row.session_id))) missedSession(db, sessionId, catalogue);
  const unknown = missing.filter((id) => !found.has(id));
  if (unknown.length > 0) throw new Error(`no such seats: ${unknown.join(", ")}`);
  return found;
}

/** A session missed once is noted; missed again, its whole catalogue is loaded. */
function missedSession(db: Executor, sessionId: string, catalogue: Catalogue): void {
  const state = catalogue.sessions.get(sessionId);
  if (state === undefined) catalogue.sessions.set(sessionId, "seen");
  else if (state === "seen") loadSession(db, sessionId, catalogue);
}

function loadSession(db: Executor, sessionId: string, catalogue: Catalogue): void {
  catalogue.sessions.set(sessionId, "loaded");
  queryRows<SeatRow>(db, sql`SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.session_id = ${sessionId}::uuid`)
    .then((rows) => remember(catalogue, rows))
    .catch(() => catalogue.sessions.set(sessionId, "seen"));
}

function toSeatInfo(row: SeatRow): SeatInfo {
  return {
    id: row.id,
    sessionId: row.session_id,
    row: row.row,
    number: Number(row.number),
    label: row.label,
    position: Number(row.position),
    category: row.category,
    priceCents: Number(row.price_cents),
  };
}

/** A hold's total: the sum of its seats' prices. */
function totalOf(seats: readonly SeatInfo[]): number {
  let total = 0;
  for (const seat of seats) total += seat.priceCents;
  return total;
}

function remember(catalogue: Catalogue, rows: readonly SeatRow[]): void {
  if (catalogue.seats.size + rows.length > CATALOGUE_MAX_SEATS) {
    catalogue.seats.clear();
    catalogue.sessions.clear();
  }
  for (const row of rows) catalogue.seats.set(row.id, toSeatInfo(row));
}
