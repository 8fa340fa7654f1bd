import { sql } from "drizzle-orm";
import { afterAll, beforeAll } from "vitest";
import { createApp } from "../../src/app.ts";
import { type Database, queryRows } from "../../src/db/database.ts";
import { eventProblems } from "../../src/events/types.ts";
import type { AppDeps, Logger } from "../../src/ports.ts";
import { type DriverName, openTestDatabase, type TestDatabase } from "./database.ts";
import { checkingProblems } from "./problem-contract.ts";

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export type TestApp = ReturnType<typeof createApp>;

/** The app on `db`; it fails a test that meets a problem code its route does not document. */
export function createTestApp(db: Database, overrides: Partial<AppDeps> = {}): TestApp {
  return checkingProblems(createApp({ db, reservationTtlSeconds: 30, logger: silentLogger, ...overrides }));
}

/** A scratch database of `driver` and the app on it, opened before a suite's tests, closed after them. */
export function useTestApp(
  driver: DriverName,
  options: { poolSize?: number; overrides?: Partial<AppDeps> } = {},
): { database: TestDatabase; app: TestApp } {
  const suite = {} as { database: TestDatabase; app: TestApp };
  beforeAll(async () => {
    suite.database = await openTestDatabase(driver, options.poolSize);
    suite.app = createTestApp(suite.database.db, options.overrides);
  });
  afterAll(async () => {
    // Every event the suite's requests wrote must match its type's schema (src/events/types.ts).
    const invalid = await invalidOutboxRows(suite.database.db);
    await suite.database.close();
    if (invalid.length > 0)
      throw new Error(`outbox rows that break their event schema:\n${invalid.join("\n")}`);
  });
  return suite;
}

/**
 * The outbox rows whose payload does not parse against its event type's schema, described. A
 * row with an empty payload is skipped: no writer of the service writes one, and some suites
 * insert such rows by hand as fixtures (stale events for the reconciler).
 */
export async function invalidOutboxRows(db: Database): Promise<string[]> {
  const rows = await queryRows<{ seq: string; type: string; payload: Record<string, unknown> }>(
    db,
    sql`SELECT seq::text AS seq, type, payload FROM outbox WHERE payload <> '{}'::jsonb ORDER BY seq`,
  );
  return rows.flatMap((row) => {
    const problems = eventProblems(row.type, row.payload);
    return problems.length === 0
      ? []
      : [`#${row.seq} ${row.type} ${JSON.stringify(row.payload)}: ${problems.join("; ")}`];
  });
}

type JsonBody = Record<string, unknown> | unknown[];

/** A JSON request against the in-process app; answers the status, headers and parsed body. */
export async function call(
  app: TestApp,
  method: string,
  path: string,
  body?: JsonBody,
  headers: Record<string, string> = {},
) {
  const response = await app.request(path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  const json: any = text ? JSON.parse(text) : undefined;
  return { status: response.status, headers: response.headers, body: json };
}

export const SESSION = {
  movieId: "dune-part-two",
  room: "Room 1",
  startsAt: "2026-12-24T20:00:00Z",
  price: 12.5,
  rowsCount: 5,
  seatsPerRow: 8,
};

/** Creates a session through the API and answers it with its seats. */
export async function createSessionVia(app: TestApp, overrides: Partial<typeof SESSION> = {}) {
  const created = await call(app, "POST", "/sessions", { ...SESSION, ...overrides });
  if (created.status !== 201)
    throw new Error(`session create failed: ${created.status} ${JSON.stringify(created.body)}`);
  const session = created.body as { id: string; seats: { id: string; label: string }[] };
  return { session, seatIds: session.seats.map((seat) => seat.id) };
}

export function hold(app: TestApp, userId: string, seatIds: string[], headers: Record<string, string> = {}) {
  return call(app, "POST", "/reservations", { userId, seatIds }, headers);
}
