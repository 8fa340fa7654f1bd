import { asc, eq, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { priceCategories, sessions } from "../db/schema.ts";
import { assignCategories, type CategoryInput, DEFAULT_CATEGORY } from "./categories.ts";
import type { Outcome } from "./deps.ts";
import { fail, ok, type Result } from "./errors.ts";
import { type IdempotencyRequest, rememberResponse, takeIdempotencyKey } from "./idempotency.ts";
import { fromCents, toCents } from "./money.ts";
import { rowLabel } from "./seat-grid.ts";
import { rememberSeatMap } from "./seat-locks.ts";
import { isStorableInstant, isStorableUuid } from "./storable.ts";
import type {
  Page,
  SeatCounts,
  SeatStatusesView,
  SeatView,
  SessionDetailView,
  SessionView,
} from "./views.ts";

export type NewSession = {
  movieId: string;
  room: string;
  startsAt: Date;
  /** The price of seats no category names; required when there are no categories. */
  price?: number;
  rowsCount: number;
  seatsPerRow: number;
  categories?: CategoryInput[];
};

/**
 * The categories a new session has: those given, plus "standard" at `price` for the seats none of
 * them names (kept only if it prices a seat); without categories, "standard" alone.
 */
export function sessionCategories(input: Pick<NewSession, "price" | "categories">): CategoryInput[] {
  const given = input.categories ?? [];
  if (input.price === undefined) return given;
  return [...given, { ...DEFAULT_CATEGORY, price: input.price }];
}

type SessionRow = typeof sessions.$inferSelect;

function toSessionView(row: SessionRow): SessionView {
  return {
    id: row.id,
    movieId: row.movieId,
    room: row.room,
    startsAt: row.startsAt.toISOString(),
    price: fromCents(row.priceCents),
    rowsCount: row.rowsCount,
    seatsPerRow: row.seatsPerRow,
    totalSeats: row.rowsCount * row.seatsPerRow,
    createdAt: row.createdAt.toISOString(),
  };
}

/**
 * Creates a session, its price categories and its whole seat grid in one transaction; each seat
 * gets its category and that category's price. The input has been validated
 * (`assignCategories` prices every seat exactly once).
 *
 * With an idempotency key, the key is taken in that transaction and remembers the session's id,
 * not its answer (a 10,000-seat map is a megabyte): a retry gets the session it created, read
 * again, and creates no second one.
 */
export async function createSession(
  db: Executor,
  input: NewSession,
  idempotency?: IdempotencyRequest,
): Promise<Result<Outcome<SessionDetailView>>> {
  const offered = sessionCategories(input);
  const assigned = assignCategories(input, offered);
  if (!assigned.ok) throw new Error(`invalid categories: ${assigned.message}`);
  const used = new Set(assigned.seatCategory);
  const categories = offered.filter((_, index) => used.has(index));
  const seatCategory = Array.from(assigned.seatCategory, (index) =>
    categories.indexOf(offered[index] as CategoryInput),
  );
  const prices = categories.map((category) => toCents(category.price));
  const outcome = await db.transaction(
    async (tx): Promise<Result<{ sessionId: string; replayed: boolean }>> => {
      if (idempotency) {
        const taken = await takeIdempotencyKey(tx, idempotency);
        if (!taken.ok) return taken;
        if (taken.value) {
          const { sessionId } = taken.value.storedResponse as { sessionId: string };
          return ok({ sessionId, replayed: true });
        }
      }
      const [created] = await tx
        .insert(sessions)
        .values({
          movieId: input.movieId,
          room: input.room,
          startsAt: input.startsAt,
          priceCents: input.price === undefined ? Math.min(...prices) : toCents(input.price),
          rowsCount: input.rowsCount,
          seatsPerRow: input.seatsPerRow,
        })
        .returning({ id: sessions.id });
      if (!created) throw new Error("session insert returned no row");
      await tx.insert(priceCategories).values(
        categories.map((category, index) => ({
          sessionId: created.id,
          key: category.key,
          name: category.name,
          priceCents: prices[index] as number,
          position: index + 1,
        })),
      );
      const rowLabels = Array.from({ length: input.rowsCount }, (_, index) => rowLabel(index));
      await tx.execute(sql`
      INSERT INTO seats (session_id, "row", "number", label, position, category, price_cents)
      SELECT ${created.id}::uuid, r.label, n, r.label || n, seat.position,
        (${sql.param(categories.map((category) => category.key))}::text[])[seat.category],
        (${sql.param(prices)}::int[])[seat.category]
      FROM unnest(${sql.param(rowLabels)}::text[]) WITH ORDINALITY AS r(label, ordinal),
           generate_series(1, ${input.seatsPerRow}::int) AS n,
           LATERAL (SELECT (r.ordinal - 1) * ${input.seatsPerRow} + n AS position) AS p,
           LATERAL (SELECT p.position, (${sql.param(seatCategory)}::int[])[p.position] + 1 AS category) AS seat`);
      if (idempotency) await rememberResponse(tx, idempotency, { sessionId: created.id });
      return ok({ sessionId: created.id, replayed: false });
    },
  );
  if (!outcome.ok) return outcome;
  // Read back without handing the map to the seat catalogue: a session nobody has asked for yet
  // is loaded there by its first buyers (seat-catalogue.ts), not kept in memory from the start.
  const detail = await readSession(db, outcome.value.sessionId);
  if (!detail.ok) throw new Error("created session vanished");
  const { version: _version, ...view } = detail.value;
  return ok({ view, replayed: outcome.value.replayed });
}

type Cursor = { startsAt: string; id: string };

function encodeCursor(cursor: Cursor): string {
  return btoa(JSON.stringify(cursor)).replaceAll("=", "");
}

/**
 * Returns undefined for a cursor we did not issue. Its fields go into casts, so they must be
 * exactly what `encodeCursor` writes: an instant as `toISOString` writes it (in the range
 * PostgreSQL reads the same) and a canonical uuid, not anything Date.parse or a loose pattern takes.
 */
export function decodeCursor(text: string): Cursor | undefined {
  try {
    const value: unknown = JSON.parse(atob(text));
    if (
      typeof value === "object" &&
      value !== null &&
      "startsAt" in value &&
      "id" in value &&
      typeof value.startsAt === "string" &&
      typeof value.id === "string" &&
      isIssuedInstant(value.startsAt) &&
      isStorableUuid(value.id)
    ) {
      return { startsAt: value.startsAt, id: value.id };
    }
  } catch {
    // fall through: not one of ours
  }
  return undefined;
}

function isIssuedInstant(text: string): boolean {
  const epochMs = Date.parse(text);
  return isStorableInstant(epochMs) && new Date(epochMs).toISOString() === text;
}

/** Sessions ordered by start time, keyset-paginated so pages stay stable while sessions are added. */
export async function listSessions(
  db: Executor,
  options: { limit: number; after?: Cursor },
): Promise<Page<SessionView>> {
  const { limit, after } = options;
  const rows = await db
    .select()
    .from(sessions)
    .where(
      after
        ? sql`(${sessions.startsAt}, ${sessions.id}) > (${after.startsAt}::timestamptz, ${after.id}::uuid)`
        : undefined,
    )
    .orderBy(asc(sessions.startsAt), asc(sessions.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toSessionView),
    nextCursor:
      rows.length > limit && last
        ? encodeCursor({ startsAt: last.startsAt.toISOString(), id: last.id })
        : null,
  };
}

type SeatMapRow = SeatView & {
  /** When the claim that makes the seat HELD ends (epoch ms); null for AVAILABLE and SOLD seats. */
  held_until: string | null;
};

/**
 * A session's seats as they are at this instant, with a version that changes whenever any seat's
 * status changes (`SeatMapState.version`) and the next instant at which one changes by itself (a
 * hold running out), so that a reader can tell without comparing whole maps.
 */
export type SeatMapState = {
  seats: SeatView[];
  counts: SeatCounts;
  version: string;
  /** Epoch ms at which the earliest live hold runs out; undefined when none is held. */
  nextExpiryAt: number | undefined;
};

/**
 * A seat is HELD or SOLD only while a claim covers this instant, so a hold past its time reads
 * AVAILABLE before the sweeper has touched it. Answers undefined for a session that does not
 * exist (every session has at least one seat).
 */
export async function readSeatMap(db: Executor, sessionId: string): Promise<SeatMapState | undefined> {
  const rows = await queryRows<SeatMapRow>(
    db,
    sql`
      SELECT s.id, s."row", s."number", s.label, s.category,
        CASE WHEN r.status = 'CONFIRMED' THEN 'SOLD' WHEN r.id IS NOT NULL THEN 'HELD' ELSE 'AVAILABLE' END AS status,
        CASE WHEN r.status <> 'CONFIRMED' THEN (extract(epoch FROM upper(rs.claim)) * 1000)::bigint::text END AS held_until
      FROM seats s
      LEFT JOIN reservation_seats rs
        ON rs.seat_id = s.id AND rs.session_id = ${sessionId}::uuid AND rs.claim @> now()
      LEFT JOIN reservations r ON r.id = rs.reservation_id
      WHERE s.session_id = ${sessionId}::uuid
      ORDER BY s.position`,
  );
  if (rows.length === 0) return undefined;
  const seats: SeatView[] = [];
  const counts = { total: rows.length, available: 0, held: 0, sold: 0 };
  let nextExpiryAt: number | undefined;
  for (const row of rows) {
    // One new object a seat (a map has up to 10,000): rest and spread would make two.
    const { id, status } = row;
    seats.push({
      id,
      row: row.row,
      number: Number(row.number),
      label: row.label,
      category: row.category,
      status,
    });
    if (status === "AVAILABLE") counts.available++;
    else if (status === "HELD") counts.held++;
    else counts.sold++;
    if (row.held_until !== null) {
      const until = Number(row.held_until);
      if (nextExpiryAt === undefined || until < nextExpiryAt) nextExpiryAt = until;
    }
  }
  return { seats, counts, version: await seatMapVersion(seats), nextExpiryAt };
}

/**
 * A digest of every seat that is not AVAILABLE, with its status. The seats of a session never
 * change, so two maps of a session with the same digest are the same map. It is computed from the
 * statuses themselves rather than read from a counter that writers bump: a counter taken from a
 * sequence is not in commit order (a transaction that took an earlier number may commit later,
 * under a version a reader has already seen), and a per-session counter row would make every
 * claim of a session wait for the previous one's commit.
 */
export async function seatMapVersion(seats: readonly Pick<SeatView, "id" | "status">[]): Promise<string> {
  let taken = "";
  for (const seat of seats) if (seat.status !== "AVAILABLE") taken += `${seat.id}${seat.status[0]},`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(taken));
  return Array.from(new Uint8Array(digest).subarray(0, 12), (byte) =>
    byte.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * The session with its seat map and the map's version (see `readSeatMap`). Someone is looking at
 * its seats: the seat catalogue loads them, so that the holds that follow need no read.
 */
export async function getSession(
  db: Executor,
  sessionId: string,
): Promise<Result<SessionDetailView & { version: string }>> {
  const detail = await readSession(db, sessionId);
  if (detail.ok) rememberSeatMap(db, sessionId);
  return detail;
}

async function readSession(
  db: Executor,
  sessionId: string,
): Promise<Result<SessionDetailView & { version: string }>> {
  const [session] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
  if (!session) return fail({ code: "SESSION_NOT_FOUND", sessionId });
  const map = await readSeatMap(db, sessionId);
  const seats = map?.seats ?? [];
  const counts = map?.counts ?? { total: 0, available: 0, held: 0, sold: 0 };
  const categories = await db
    .select({ key: priceCategories.key, name: priceCategories.name, priceCents: priceCategories.priceCents })
    .from(priceCategories)
    .where(eq(priceCategories.sessionId, sessionId))
    .orderBy(asc(priceCategories.position));
  return ok({
    ...toSessionView(session),
    categories: categories.map(({ key, name, priceCents }) => ({ key, name, price: fromCents(priceCents) })),
    counts,
    seats,
    version: map?.version ?? "",
  });
}

/** Only the statuses of a session's seats: what a seat map polls for. */
export async function getSeatStatuses(
  db: Executor,
  sessionId: string,
): Promise<Result<SeatStatusesView & { version: string }>> {
  const map = await readSeatMap(db, sessionId);
  if (!map) return fail({ code: "SESSION_NOT_FOUND", sessionId });
  return ok({
    sessionId,
    counts: map.counts,
    seats: map.seats.map((seat) => ({ id: seat.id, status: seat.status })),
    version: map.version,
  });
}
