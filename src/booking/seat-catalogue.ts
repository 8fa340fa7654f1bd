import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { fail, ok, type Result } from "./errors.ts";

/**
 * What the service knows about seats, per database: each seat's session, row, number, label,
 * position, category and price. Seats and prices never change once a session exists, so an
 * entry never goes stale. A hold needs this twice: the Redis lock keys carry the session as hash
 * tag, and the answer (labels, total price) is built here instead of in the claim statement,
 * which then only decides who gets the seats. A payment's answer is built from it too (seatsById).
 *
 * The first buyer of a seat reads it; concurrent buyers of the same seats share that read. When a
 * session misses a second time, or its seat map has just been read, its whole catalogue is loaded
 * in the background, once, so the next buyers of any of its seats need no read at all. (Where the
 * database object lives for one request, as on Workers, nothing misses twice and no map is loaded.)
 *
 * Only whole sessions are kept, column by column (`SessionSeats`), and seats are found by their
 * id's 128 bits in a hash table of integers (`SeatIndex`): a seat costs ~40 bytes, where an object
 * per seat with its own strings cost ~270 and made a full catalogue 27 MB of the heap
 * (BENCHMARKS.md, "Memory").
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

/**
 * The bound: at ~40 bytes a seat (its id's bits, its index entry, its columns) 100,000 seats are
 * ~4 MB, and hold ten full 10,000-seat rooms or hundreds of smaller ones on sale at once. Past it,
 * the sessions used least recently make room; one of them coming back costs a read and a reload.
 */
const CATALOGUE_MAX_SEATS = 100_000;

/** Sessions kept at most (each ~1 KB besides its seats); also keeps every index value a small integer. */
const CATALOGUE_MAX_SESSIONS = 2_000;

/** Sessions remembered as missed once, at most: a session id and a Map entry each, ~100 bytes. */
const MISSED_MAX_SESSIONS = 10_000;

/** An index value is `slot * SLOT_SEATS + seat`: a session of more seats is not kept. */
const SLOT_SEATS = 16_384;

/**
 * One session's seats; seat `i` has the id whose four 32-bit words are `ids[4i..4i+3]`, is in row
 * `rowLabels[rowOf[i]]` and of category `categories[categoryOf[i]]`.
 */
type SessionSeats = {
  sessionId: string;
  slot: number;
  count: number;
  ids: Int32Array;
  rowLabels: string[];
  rowOf: Uint16Array;
  numbers: Int32Array;
  positions: Int32Array;
  categories: string[];
  categoryOf: Uint16Array;
  prices: Int32Array;
  /** Labels that are not row + number, by seat (none for the seats POST /sessions makes). */
  labels: Map<number, string> | undefined;
  /** When a hold last used it, on the catalogue's clock: the least recent go first. */
  usedAt: number;
};

type Catalogue = {
  index: SeatIndex;
  slots: (SessionSeats | undefined)[];
  freeSlots: number[];
  seatCount: number;
  clock: number;
  /** Reads in flight, by seat set: a crowd arriving at once for the same seats waits for one. */
  reading: Map<string, Promise<Result<SeatSelection>>>;
  /** Sessions that missed once ("seen"), are loading, or are not kept ("skipped": too many seats). */
  sessions: Map<string, "seen" | "loading" | "skipped">;
  /** Sessions whose seats are kept, by id. */
  loaded: Map<string, SessionSeats>;
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

/** A whole session's seats: its id once, and a label only where it is not row + number. */
type SessionSeatRow = Omit<SeatRow, "session_id" | "label"> & { label: string | null };

const SESSION_SEAT_COLUMNS = sql`s.id::text AS id, s."row", s."number", NULLIF(s.label, s."row" || s."number") AS label, s.position, s.category, s.price_cents`;

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
export function rememberSeatMap(db: Executor, sessionId: string): void {
  const catalogue = catalogues.get(db);
  if (!catalogue || catalogue.loaded.has(sessionId) || catalogue.sessions.get(sessionId) === "loading")
    return;
  loadSession(db, sessionId, catalogue);
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
    const seat = seatOf(catalogue, id);
    if (seat) found.set(id, seat);
    else missing.push(id);
  }
  if (missing.length === 0) return found;
  const rows = await queryRows<SeatRow>(
    via,
    sql`SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.id = ANY(${uuidArray(missing)})`,
  );
  for (const row of rows) found.set(row.id, toSeatInfo(row));
  for (const sessionId of new Set(rows.map((row) => row.session_id))) missedSession(db, sessionId, catalogue);
  const unknown = missing.filter((id) => !found.has(id));
  if (unknown.length > 0) throw new Error(`no such seats: ${unknown.join(", ")}`);
  return found;
}

function catalogueOf(db: Executor): Catalogue {
  let catalogue = catalogues.get(db);
  if (!catalogue) {
    catalogue = {
      index: { entries: new Int32Array(INDEX_MIN_ENTRIES), used: 0, ended: 0 },
      slots: [],
      freeSlots: [],
      seatCount: 0,
      clock: 0,
      reading: new Map(),
      sessions: new Map(),
      loaded: new Map(),
    };
    catalogues.set(db, catalogue);
  }
  return catalogue;
}

function seatOf(catalogue: Catalogue, id: string): SeatInfo | undefined {
  const at = find(catalogue, id);
  if (at === undefined) return undefined;
  const session = catalogue.slots[Math.floor(at / SLOT_SEATS)] as SessionSeats;
  session.usedAt = ++catalogue.clock;
  return seatAt(session, at % SLOT_SEATS, id);
}

function selectionOf(catalogue: Catalogue, seatIds: readonly string[]): SeatSelection | undefined {
  let session: SessionSeats | undefined;
  const seats: SeatInfo[] = [];
  for (const id of seatIds) {
    const at = find(catalogue, id);
    if (at === undefined) return undefined;
    const of = catalogue.slots[Math.floor(at / SLOT_SEATS)] as SessionSeats;
    // Seats of two sessions: the read answers which sessions they are.
    if (session !== undefined && of !== session) return undefined;
    session = of;
    seats.push(seatAt(of, at % SLOT_SEATS, id));
  }
  if (session === undefined) return undefined;
  session.usedAt = ++catalogue.clock;
  if (seats.length > 1) seats.sort((a, b) => a.position - b.position);
  return { sessionId: session.sessionId, totalCents: totalOf(seats), seats };
}

/** `id` is the seat's id as the database writes it (lower case), which is what found it. */
function seatAt(session: SessionSeats, seat: number, id: string): SeatInfo {
  const row = session.rowLabels[session.rowOf[seat] as number] as string;
  const number = session.numbers[seat] as number;
  return {
    id,
    sessionId: session.sessionId,
    row,
    number,
    label: session.labels?.get(seat) ?? `${row}${number}`,
    position: session.positions[seat] as number,
    category: session.categories[session.categoryOf[seat] as number] as string,
    priceCents: session.prices[seat] as number,
  };
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
  const sessionId = sessionIds[0] as string;
  missedSession(db, sessionId, catalogue);
  const seats = rows.map(toSeatInfo).sort((a, b) => a.position - b.position);
  return ok({ sessionId, totalCents: totalOf(seats), seats });
}

/** A session missed once is noted; missed again, its whole catalogue is loaded. */
function missedSession(db: Executor, sessionId: string, catalogue: Catalogue): void {
  if (catalogue.loaded.has(sessionId)) return;
  const state = catalogue.sessions.get(sessionId);
  if (state === "seen") loadSession(db, sessionId, catalogue);
  else if (state === undefined) {
    if (catalogue.sessions.size >= MISSED_MAX_SESSIONS) catalogue.sessions.clear();
    catalogue.sessions.set(sessionId, "seen");
  }
}

function loadSession(db: Executor, sessionId: string, catalogue: Catalogue): void {
  catalogue.sessions.set(sessionId, "loading");
  queryRows<SessionSeatRow>(
    db,
    sql`SELECT ${SESSION_SEAT_COLUMNS} FROM seats s WHERE s.session_id = ${sessionId}::uuid`,
  )
    .then((rows) => {
      if (
        rows.length > SLOT_SEATS ||
        rows.length > CATALOGUE_MAX_SEATS ||
        !rows.every((row) => isIdText(row.id))
      ) {
        catalogue.sessions.set(sessionId, "skipped");
        return;
      }
      catalogue.sessions.delete(sessionId);
      if (rows.length > 0 && !catalogue.loaded.has(sessionId)) keep(catalogue, sessionId, rows);
    })
    .catch(() => catalogue.sessions.set(sessionId, "seen"));
}

/** Stores a whole session, after making room by dropping the sessions used least recently. */
function keep(catalogue: Catalogue, sessionId: string, rows: readonly SessionSeatRow[]): void {
  while (
    catalogue.loaded.size > 0 &&
    (catalogue.seatCount + rows.length > CATALOGUE_MAX_SEATS ||
      catalogue.loaded.size >= CATALOGUE_MAX_SESSIONS)
  ) {
    let oldest: SessionSeats | undefined;
    for (const session of catalogue.loaded.values())
      if (oldest === undefined || session.usedAt < oldest.usedAt) oldest = session;
    drop(catalogue, oldest as SessionSeats);
  }
  const slot = catalogue.freeSlots.pop() ?? catalogue.slots.length;
  const session = columnsOf(sessionId, slot, rows);
  session.usedAt = ++catalogue.clock;
  reserve(catalogue, rows.length);
  catalogue.slots[slot] = session;
  catalogue.loaded.set(sessionId, session);
  catalogue.seatCount += rows.length;
  for (let seat = 0; seat < session.count; seat++) insert(catalogue, session, seat);
}

function drop(catalogue: Catalogue, session: SessionSeats): void {
  for (let seat = 0; seat < session.count; seat++) remove(catalogue, session, seat);
  catalogue.slots[session.slot] = undefined;
  catalogue.freeSlots.push(session.slot);
  catalogue.loaded.delete(session.sessionId);
  catalogue.seatCount -= session.count;
}

function columnsOf(sessionId: string, slot: number, rows: readonly SessionSeatRow[]): SessionSeats {
  const count = rows.length;
  const session: SessionSeats = {
    sessionId,
    slot,
    count,
    ids: new Int32Array(4 * count),
    rowLabels: [],
    rowOf: new Uint16Array(count),
    numbers: new Int32Array(count),
    positions: new Int32Array(count),
    categories: [],
    categoryOf: new Uint16Array(count),
    prices: new Int32Array(count),
    labels: undefined,
    usedAt: 0,
  };
  // Each row's strings are the driver's own copies: one per distinct value is kept.
  const rowIndex = new Map<string, number>();
  const categoryIndex = new Map<string, number>();
  rows.forEach((row, seat) => {
    idWords(row.id, session.ids, 4 * seat);
    session.rowOf[seat] = indexOf(rowIndex, session.rowLabels, row.row);
    session.numbers[seat] = Number(row.number);
    session.positions[seat] = Number(row.position);
    session.categoryOf[seat] = indexOf(categoryIndex, session.categories, row.category);
    session.prices[seat] = Number(row.price_cents);
    if (row.label !== null) {
      session.labels ??= new Map();
      session.labels.set(seat, row.label);
    }
  });
  return session;
}

/**
 * Seats by id, open addressing with linear probing over one Int32Array: an entry is 0 (free),
 * -1 (a dropped seat) or `slot * SLOT_SEATS + seat + 1`; the id's words are read from the session.
 * At most half the entries are taken (free or dropped ones end every probe quickly), and the table
 * is rebuilt when dropped entries would pass that.
 */
type SeatIndex = { entries: Int32Array; used: number; ended: number };

const INDEX_MIN_ENTRIES = 1_024;
const ENDED = -1;

/** The four 32-bit words of a lower-case uuid's 32 hex digits into `into` at `at`; false if `id` is none. */
function idWords(id: string, into: Int32Array, at: number): boolean {
  if (id.length !== 36) return false;
  let word = 0;
  let digits = 0;
  for (let i = 0; i < 36; i++) {
    const code = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (code !== 45) return false;
      continue;
    }
    let value: number;
    if (code >= 48 && code <= 57) value = code - 48;
    else if (code >= 97 && code <= 102) value = code - 87;
    else return false;
    word = (word << 4) | value;
    if (++digits % 8 === 0) {
      into[at + digits / 8 - 1] = word;
      word = 0;
    }
  }
  return true;
}

const scratch = new Int32Array(4);

function isIdText(id: string): boolean {
  return idWords(id, scratch, 0);
}

function hashOf(words: Int32Array, at: number, mask: number): number {
  const mixed =
    Math.imul((words[at] as number) ^ (words[at + 3] as number), 0x9e3779b1) ^ (words[at + 1] as number);
  return (Math.imul(mixed ^ (mixed >>> 15), 0x85ebca6b) ^ (words[at + 2] as number)) & mask;
}

/** The entry (`slot * SLOT_SEATS + seat`) of the seat `id`, or undefined. */
function find(catalogue: Catalogue, id: string): number | undefined {
  if (catalogue.index.used === 0 || !idWords(id, scratch, 0)) return undefined;
  const { entries } = catalogue.index;
  const mask = entries.length - 1;
  for (let probe = hashOf(scratch, 0, mask); ; probe = (probe + 1) & mask) {
    const entry = entries[probe] as number;
    if (entry === 0) return undefined;
    if (entry === ENDED) continue;
    const at = entry - 1;
    const session = catalogue.slots[Math.floor(at / SLOT_SEATS)] as SessionSeats;
    const words = 4 * (at % SLOT_SEATS);
    if (
      session.ids[words] === scratch[0] &&
      session.ids[words + 1] === scratch[1] &&
      session.ids[words + 2] === scratch[2] &&
      session.ids[words + 3] === scratch[3]
    )
      return at;
  }
}

/** Makes room for `more` seats in the index: a new table (at most half full) when needed. */
function reserve(catalogue: Catalogue, more: number): void {
  const { used, ended, entries } = catalogue.index;
  if (2 * (used + ended + more) <= entries.length) return;
  let size = INDEX_MIN_ENTRIES;
  while (size < 2 * (used + more)) size *= 2;
  catalogue.index = { entries: new Int32Array(size), used: 0, ended: 0 };
  for (const session of catalogue.loaded.values())
    for (let seat = 0; seat < session.count; seat++) insert(catalogue, session, seat);
}

/** After `reserve`: the index has room. */
function insert(catalogue: Catalogue, session: SessionSeats, seat: number): void {
  const index = catalogue.index;
  const { entries } = index;
  const mask = entries.length - 1;
  let probe = hashOf(session.ids, 4 * seat, mask);
  while ((entries[probe] as number) > 0) probe = (probe + 1) & mask;
  if (entries[probe] === ENDED) index.ended--;
  entries[probe] = session.slot * SLOT_SEATS + seat + 1;
  index.used++;
}

function remove(catalogue: Catalogue, session: SessionSeats, seat: number): void {
  const { entries } = catalogue.index;
  const mask = entries.length - 1;
  const entry = session.slot * SLOT_SEATS + seat + 1;
  for (let probe = hashOf(session.ids, 4 * seat, mask); entries[probe] !== 0; probe = (probe + 1) & mask) {
    if (entries[probe] === entry) {
      entries[probe] = ENDED;
      catalogue.index.used--;
      catalogue.index.ended++;
      return;
    }
  }
}

function indexOf(index: Map<string, number>, values: string[], value: string): number {
  let at = index.get(value);
  if (at === undefined) {
    at = values.push(value) - 1;
    index.set(value, at);
  }
  return at;
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
