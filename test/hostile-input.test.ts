import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, createTestApp, hold, SESSION, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

/**
 * Values that pass a naive check but not PostgreSQL: text with NUL, unpaired surrogates (a driver
 * would store U+FFFD without a word), timestamps outside what the database or JavaScript render
 * alike, cursor fields that Date.parse or a loose id pattern accept but a cast does not. Each gets
 * a 400 problem and changes no row, on every driver.
 */
describe.each(availableDrivers())("hostile input on %s gets a 400 problem and changes nothing", (driver) => {
  const suite = useTestApp(driver);
  let seatIds: string[];
  let reservationId: string;
  let session: { id: string };

  const rowCounts = async () =>
    (
      await queryRows<Record<string, number>>(
        suite.database.db,
        sql`SELECT (SELECT count(*)::int FROM sessions) AS sessions, (SELECT count(*)::int FROM seats) AS seats,
                   (SELECT count(*)::int FROM reservations) AS reservations,
                   (SELECT count(*)::int FROM reservation_seats) AS claims, (SELECT count(*)::int FROM sales) AS sales,
                   (SELECT count(*)::int FROM outbox) AS events, (SELECT count(*)::int FROM idempotency_keys) AS keys,
                   (SELECT count(*)::int FROM reservations WHERE status <> 'PENDING') AS settled`,
      )
    )[0];

  beforeAll(async () => {
    ({ seatIds, session } = await createSessionVia(suite.app));
    reservationId = (await hold(suite.app, "owner", [seatIds[0] as string])).body.id;
  });

  /** JSON text as sent: JSON.stringify writes a lone surrogate as a \u escape, which parses back to it. */
  const send = (method: string, path: string, body?: string) =>
    suite.app.request(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body,
    });

  const expectRefused = async (response: Response) => {
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = await response.json();
    expect(problem).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
    expect(problem.requestId).toEqual(expect.any(String));
    return problem;
  };

  const sessions: [string, Record<string, unknown>][] = [
    ["a NUL in movieId", { ...SESSION, movieId: "dune\u0000two" }],
    ["a NUL in room", { ...SESSION, room: "Room\u00001" }],
    ["a lone high surrogate in movieId", { ...SESSION, movieId: "dune\ud800" }],
    ["a lone low surrogate in room", { ...SESSION, room: "\udc00Room" }],
    ["a surrogate pair in the wrong order", { ...SESSION, movieId: "dune\udc00\ud800" }],
    ["startsAt in year 0", { ...SESSION, startsAt: "0000-01-01T00:00:00Z" }],
    ["startsAt in year 1", { ...SESSION, startsAt: "0001-01-01T00:00:00Z" }],
    ["startsAt before 1970", { ...SESSION, startsAt: "1969-12-31T23:59:59Z" }],
    ["startsAt past 9999 once its offset applies", { ...SESSION, startsAt: "9999-12-31T23:59:59-01:00" }],
    // The grid's own checks fail but do not abort: the categories check must not run on such a grid.
    ["a negative rowsCount", { ...SESSION, rowsCount: -1, seatsPerRow: 1 }],
    ["a negative seatsPerRow", { ...SESSION, rowsCount: 2, seatsPerRow: -2_147_483_649 }],
    [
      "a negative rowsCount and categories",
      { ...SESSION, rowsCount: -3, categories: [{ key: "a", name: "A", price: 1 }] },
    ],
  ];

  it.each(sessions)("a session with %s", async (_name, body) => {
    const before = await rowCounts();
    const problem = await expectRefused(await send("POST", "/sessions", JSON.stringify(body)));
    expect(problem.errors.length).toBeGreaterThan(0);
    expect(await rowCounts()).toEqual(before);
  });

  it("keeps well-formed text beyond ASCII, surrogate pairs included, as sent", async () => {
    const movieId = "Amélie 🎬 – 千と千尋";
    const created = await call(suite.app, "POST", "/sessions", {
      ...SESSION,
      movieId,
      startsAt: "9999-12-31T23:59:59Z",
    });
    expect(created.status).toBe(201);
    const [row] = await queryRows<{ movie_id: string }>(
      suite.database.db,
      sql`SELECT movie_id FROM sessions WHERE id = ${created.body.id}::uuid`,
    );
    expect(row?.movie_id).toBe(movieId);
  });

  const cursor = (fields: Record<string, unknown>) =>
    encodeURIComponent(btoa(JSON.stringify(fields)).replaceAll("=", ""));
  const validId = "0b9a3c1e-1f4e-4c8a-9d6b-2a7f5e3c9d10";
  const cursors: [string, Record<string, unknown>][] = [
    ['startsAt "1"', { startsAt: "1", id: validId }],
    ['startsAt "2026"', { startsAt: "2026", id: validId }],
    ["startsAt in year 0", { startsAt: "0000-01-01T00:00:00.000Z", id: validId }],
    ["startsAt as an HTTP date", { startsAt: "Tue, 01 Dec 2026 00:00:00 GMT", id: validId }],
    ["an id of 36 dashes", { startsAt: "2026-12-24T20:00:00.000Z", id: "-".repeat(36) }],
    ["an id of 36 hex digits", { startsAt: "2026-12-24T20:00:00.000Z", id: "a".repeat(36) }],
    ["an id with dashes out of place", { startsAt: "2026-12-24T20:00:00.000Z", id: `${"ab12-".repeat(7)}a` }],
  ];

  it.each(cursors)("GET /sessions with a cursor whose %s", async (_name, fields) => {
    await expectRefused(await send("GET", `/sessions?cursor=${cursor(fields)}`));
  });

  it("still pages with the cursors it issues", async () => {
    const first = await call(suite.app, "GET", "/sessions?limit=1");
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await call(suite.app, "GET", `/sessions?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.body.items).toHaveLength(1);
  });

  it.each([
    ["/sessions/%00", "GET"],
    ["/reservations/%00", "GET"],
    ["/reservations/user/a%00b", "GET"],
    ["/reservations/user/a%ED%A0%80b", "GET"],
    ["/sales/history/a%00b", "GET"],
    ["/sessions?limit=1%00", "GET"],
  ])("%s", async (path, method) => {
    await expectRefused(await send(method, path));
  });

  it.each([
    ["a hold for a userId with NUL", "/reservations", () => ({ userId: "u\u0000", seatIds: [seatIds[1]] })],
    [
      "a hold for a userId with a lone surrogate",
      "/reservations",
      () => ({ userId: "u\ud800", seatIds: [seatIds[1]] }),
    ],
    [
      "a best-available hold for a category with NUL",
      "/reservations",
      () => ({ userId: "u", sessionId: session.id, quantity: 1, category: "std\u0000" }),
    ],
    [
      "a best-available hold for a category with a lone surrogate",
      "/reservations",
      () => ({ userId: "u", sessionId: session.id, quantity: 1, category: "std\udfff" }),
    ],
    [
      "a payment by a userId with NUL",
      () => `/reservations/${reservationId}/pay`,
      () => ({ userId: "owner\u0000" }),
    ],
    [
      "a cancel by a userId with a lone surrogate",
      () => `/reservations/${reservationId}/cancel`,
      () => ({ userId: "owner\udbff" }),
    ],
  ] as [string, string | (() => string), () => Record<string, unknown>][])(
    "%s",
    async (_name, path, body) => {
      const before = await rowCounts();
      await expectRefused(
        await send("POST", typeof path === "string" ? path : path(), JSON.stringify(body())),
      );
      expect(await rowCounts()).toEqual(before);
    },
  );

  // Bytes that are not UTF-8 decode to U+FFFD in the platform's text(): a name sent with them would
  // be stored altered without a word, as lone surrogates were.
  it.each([
    ["a stray 0xFF byte", [0xff]],
    ["a surrogate encoded as UTF-8 (CESU-8)", [0xed, 0xa0, 0x80]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["an overlong encoding", [0xc0, 0xaf]],
  ])("a session whose body has %s", async (_name, bytes) => {
    const before = await rowCounts();
    const [head, tail] = JSON.stringify({ ...SESSION, movieId: "dune|" }).split("|");
    const body = new Uint8Array([
      ...new TextEncoder().encode(head),
      ...bytes,
      ...new TextEncoder().encode(tail),
    ]);
    const response = await suite.app.request("/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ status: 400, code: "MALFORMED_JSON" });
    expect(await rowCounts()).toEqual(before);
  });
});

describe.each(availableDrivers())("a value the database refuses on %s", (driver) => {
  const suite = useTestApp(driver);

  // A route that sends what it is given to the real database, as a route with a validation gap
  // would: the database's input error must come back as a 400 problem, not an internal error.
  const withGap = () => {
    const app = createTestApp(suite.database.db);
    app.get("/gap/:kind", async (c) => {
      const value = c.req.query("value") ?? "";
      const kind = c.req.param("kind");
      if (kind === "text") await suite.database.db.execute(sql`SELECT ${value}::text`);
      if (kind === "timestamp") await suite.database.db.execute(sql`SELECT ${value}::timestamptz`);
      if (kind === "uuid") await suite.database.db.execute(sql`SELECT ${value}::uuid`);
      if (kind === "integer") await suite.database.db.execute(sql`SELECT ${value}::int`);
      return c.text("sent");
    });
    return app;
  };

  it.each([
    ["text", "a%00b"],
    ["timestamp", "2026"],
    ["timestamp", "0000-01-01T00:00:00Z"],
    ["uuid", "-".repeat(36)],
    ["integer", "99999999999"],
  ])("a %s of %s answers 400, not 500", async (kind, value) => {
    const response = await withGap().request(`/gap/${kind}?value=${value}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
  });
});
