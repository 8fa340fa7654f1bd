import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { uuidArray } from "../db/sql-helpers.ts";
import { advisoryLease, advisorySeatLock } from "../seat-lock/advisory.ts";
import type { SeatLease, SeatRelease } from "../seat-lock/seat-lock.ts";
import type { BookingDeps } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { noTelemetry } from "./telemetry.ts";

/**
 * How a hold uses the seat lock: take it before the claim transaction, so buyers of a seat someone
 * is claiming are turned away without touching the database, and give it back whenever the claim
 * did not produce a new hold. Locks only shield the database; its constraint decides.
 */
export async function lockSeats(
  deps: BookingDeps,
  claim: { seatIds: string[]; owner: string },
  idempotent: boolean,
): Promise<Result<SeatLease>> {
  const seatLock = deps.seatLock ?? advisorySeatLock;
  let sessionId = "";
  if (seatLock.keyedBySession) {
    const session = await sessionOfSeats(deps.db, claim.seatIds);
    if (!session.ok) return session;
    sessionId = session.value;
  }
  const attempt = await seatLock.acquire({ ...claim, sessionId, ttlMs: deps.reservationTtlSeconds * 1000 });
  if (attempt.acquired) {
    if (attempt.lease.backend !== "advisory")
      telemetryOf(deps).lockAcquisition(attempt.lease.backend, "acquired");
    return ok(attempt.lease);
  }
  telemetryOf(deps).lockAcquisition(attempt.backend, "conflict");
  // A retry of a hold that went through finds its own seats locked; only the database knows the
  // key and can replay the stored answer, so such a request goes on with in-transaction locks.
  if (idempotent) return ok(advisoryLease(claim.seatIds));
  return fail({ code: "SEAT_UNAVAILABLE", seatIds: attempt.seatIds });
}

/** First thing in the claim transaction: the seats another claimant holds there, if any. */
export async function enterSeatLease(deps: BookingDeps, lease: SeatLease, tx: Executor): Promise<string[]> {
  const lost = await lease.enter(tx);
  if (lease.backend === "advisory") {
    telemetryOf(deps).lockAcquisition("advisory", lost.length > 0 ? "conflict" : "acquired");
  }
  return lost;
}

/** The seats a hold's lock covers, with the hold's id as the owner token. */
export function lockedSeatsOf(hold: { id: string; sessionId: string; seatIds: string[] }): SeatRelease {
  return { sessionId: hold.sessionId, seatIds: hold.seatIds, owner: hold.id };
}

/**
 * After a payment, cancellation or expiry; this instance stops refusing the seats from memory.
 * Never throws: an unreleased lock ends with its TTL.
 */
export async function releaseSeatLocks(
  deps: Pick<BookingDeps, "seatLock" | "refusals">,
  seats: SeatRelease,
): Promise<void> {
  deps.refusals?.forget(seats.seatIds);
  if (!deps.seatLock || seats.seatIds.length === 0) return;
  await deps.seatLock.release(seats).catch(() => undefined);
}

function telemetryOf(deps: BookingDeps) {
  return deps.telemetry ?? noTelemetry;
}

/**
 * Which session each seat belongs to, per database. A seat never changes session, so an entry
 * never goes stale; a full cache simply starts over. The first buyer of a seat reads its session.
 * When a session misses a second time, its whole seat map is loaded in the background, once, so
 * the next buyers of any of its seats need no read at all. (Where the database object lives for
 * one request, as on Workers, nothing misses twice and no seat map is ever loaded.) Only the
 * lock's key depends on this: the claim itself checks seats and sessions again in the database.
 */
const SEAT_SESSIONS_MAX = 100_000;

type SeatSessions = {
  known: Map<string, string>;
  /** Reads in flight, by seat set: a crowd arriving at once for the same seats waits for one. */
  reading: Map<string, Promise<Result<string>>>;
  /** Sessions that missed once ("seen"), and those whose seat map is loaded or loading. */
  sessions: Map<string, "seen" | "loaded">;
};

const seatSessions = new WeakMap<object, SeatSessions>();

/**
 * A seat map just read (for a buyer, or for a new session) names every seat of its session:
 * remembered where this database already keeps a cache, so its buyers' locks need no read.
 */
export function rememberSeatMap(db: Executor, sessionId: string, seatIds: readonly string[]): void {
  const cache = seatSessions.get(db);
  if (!cache || cache.sessions.get(sessionId) === "loaded") return;
  cache.sessions.set(sessionId, "loaded");
  remember(cache, sessionId, seatIds);
}

/** Redis keys carry the session as their hash tag, so the session is read (not written) first. */
function sessionOfSeats(db: Executor, seatIds: string[]): Promise<Result<string>> | Result<string> {
  const cache = seatSessions.get(db) ?? { known: new Map(), reading: new Map(), sessions: new Map() };
  seatSessions.set(db, cache);
  const cached = new Set(seatIds.map((id) => cache.known.get(id)));
  if (cached.size === 1 && !cached.has(undefined)) return ok([...cached][0] as string);
  const key = seatIds.join(",");
  let read = cache.reading.get(key);
  if (!read) {
    read = readSessionOfSeats(db, seatIds, cache).finally(() => cache.reading.delete(key));
    cache.reading.set(key, read);
  }
  return read;
}

async function readSessionOfSeats(
  db: Executor,
  seatIds: string[],
  cache: SeatSessions,
): Promise<Result<string>> {
  const rows = await queryRows<{ id: string; session_id: string }>(
    db,
    sql`SELECT id::text AS id, session_id::text AS session_id FROM seats WHERE id = ANY(${uuidArray(seatIds)})`,
  );
  const found = new Set(rows.map((row) => row.id));
  const missing = seatIds.filter((id) => !found.has(id));
  if (missing.length > 0) return fail({ code: "SEAT_NOT_FOUND", seatIds: missing });
  const sessionIds = [...new Set(rows.map((row) => row.session_id))];
  if (sessionIds.length > 1) return fail({ code: "SEATS_FROM_MULTIPLE_SESSIONS", sessionIds });
  const sessionId = sessionIds[0] as string;
  remember(cache, sessionId, seatIds);
  const state = cache.sessions.get(sessionId);
  if (state === undefined) cache.sessions.set(sessionId, "seen");
  else if (state === "seen") {
    cache.sessions.set(sessionId, "loaded");
    loadSeatMap(db, sessionId, cache).catch(() => cache.sessions.set(sessionId, "seen"));
  }
  return ok(sessionId);
}

async function loadSeatMap(db: Executor, sessionId: string, cache: SeatSessions): Promise<void> {
  const [row] = await queryRows<{ seat_ids: string[] | null }>(
    db,
    sql`SELECT array_agg(id::text) AS seat_ids FROM seats WHERE session_id = ${sessionId}::uuid`,
  );
  remember(cache, sessionId, row?.seat_ids ?? []);
}

function remember(cache: SeatSessions, sessionId: string, seatIds: readonly string[]): void {
  if (cache.known.size + seatIds.length > SEAT_SESSIONS_MAX) {
    cache.known.clear();
    cache.sessions.clear();
  }
  for (const id of seatIds) cache.known.set(id, sessionId);
}
