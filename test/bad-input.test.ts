import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../src/app.ts";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, hold, SESSION, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

describe.each(availableDrivers())("bad input on %s gets a 4xx problem and changes nothing", (driver) => {
  const suite = useTestApp(driver);
  let seatIds: string[];
  let otherSessionSeat: string;

  const rowCounts = async () =>
    (
      await queryRows<Record<string, number>>(
        suite.database.db,
        sql`SELECT (SELECT count(*)::int FROM sessions) AS sessions, (SELECT count(*)::int FROM seats) AS seats,
                   (SELECT count(*)::int FROM reservations) AS reservations,
                   (SELECT count(*)::int FROM reservation_seats) AS claims, (SELECT count(*)::int FROM sales) AS sales,
                   (SELECT count(*)::int FROM outbox) AS events, (SELECT count(*)::int FROM idempotency_keys) AS keys`,
      )
    )[0];

  beforeAll(async () => {
    ({ seatIds } = await createSessionVia(suite.app));
    otherSessionSeat = (await createSessionVia(suite.app)).seatIds[0] as string;
  });

  const raw = (method: string, path: string, body: string, contentType = "application/json") =>
    suite.app.request(path, { method, headers: { "content-type": contentType }, body });

  const cases: [string, () => Response | Promise<Response>, number, string][] = [
    ["malformed JSON", () => raw("POST", "/reservations", '{"userId": "a", '), 400, "MALFORMED_JSON"],
    ["a JSON array body", () => raw("POST", "/reservations", "[1,2]"), 400, "VALIDATION_FAILED"],
    [
      "a text/plain body",
      () => raw("POST", "/reservations", "hello", "text/plain"),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    ],
    ["no body", () => suite.app.request("/reservations", { method: "POST" }), 400, "VALIDATION_FAILED"],
    [
      "an oversized body",
      () => raw("POST", "/sessions", JSON.stringify({ ...SESSION, room: "x".repeat(MAX_BODY_BYTES) })),
      413,
      "PAYLOAD_TOO_LARGE",
    ],
  ];

  it.each(cases)("%s", async (_name, send, status, code) => {
    const before = await rowCounts();
    const response = await send();
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const body = await response.json();
    expect(body).toMatchObject({ status, code });
    expect(body.requestId).toEqual(expect.any(String));
    expect(await rowCounts()).toEqual(before);
  });

  const invalidHolds: [string, () => Record<string, unknown>, number, string][] = [
    [
      "an unknown field",
      () => ({ userId: "u", seatIds: [seatIds[0]], admin: true }),
      400,
      "VALIDATION_FAILED",
    ],
    ["userId of the wrong type", () => ({ userId: 42, seatIds: [seatIds[0]] }), 400, "VALIDATION_FAILED"],
    ["an empty seat list", () => ({ userId: "u", seatIds: [] }), 400, "VALIDATION_FAILED"],
    ["a repeated seat", () => ({ userId: "u", seatIds: [seatIds[0], seatIds[0]] }), 400, "VALIDATION_FAILED"],
    [
      "a repeated seat in other case",
      () => ({ userId: "u", seatIds: [seatIds[0], seatIds[0]?.toUpperCase()] }),
      400,
      "VALIDATION_FAILED",
    ],
    ["too many seats", () => ({ userId: "u", seatIds: seatIds.slice(0, 11) }), 400, "VALIDATION_FAILED"],
    [
      "a non-UUID seat id",
      () => ({ userId: "u", seatIds: ["1; DROP TABLE seats"] }),
      400,
      "VALIDATION_FAILED",
    ],
    ["a hostile userId", () => ({ userId: "<script>'--", seatIds: [seatIds[0]] }), 400, "VALIDATION_FAILED"],
    [
      "an unknown seat",
      () => ({ userId: "u", seatIds: [seatIds[0], crypto.randomUUID()] }),
      404,
      "SEAT_NOT_FOUND",
    ],
    [
      "seats of two sessions",
      () => ({ userId: "u", seatIds: [seatIds[0], otherSessionSeat] }),
      400,
      "SEATS_FROM_MULTIPLE_SESSIONS",
    ],
  ];

  it.each(invalidHolds)("a hold with %s", async (_name, body, status, code) => {
    const before = await rowCounts();
    const response = await call(suite.app, "POST", "/reservations", body());
    expect(response.status).toBe(status);
    expect(response.body.code).toBe(code);
    expect(await rowCounts()).toEqual(before);
  });

  it.each([
    [
      "a hold without userId (open mode)",
      () => call(suite.app, "POST", "/reservations", { seatIds: [seatIds[0]] }),
    ],
    ["a cursor this API did not issue", () => call(suite.app, "GET", "/sessions?cursor=bm90LW91cnM")],
  ])("names the field of %s in its errors list, as every VALIDATION_FAILED does", async (_name, send) => {
    const response = await send();
    expect(response.status).toBe(400);
    expect(response.body.code).toBe("VALIDATION_FAILED");
    expect(response.body.errors).toEqual([{ path: expect.any(String), message: expect.any(String) }]);
    expect(response.body.errors[0].path).not.toBe("");
  });

  it("names the unknown seat ids", async () => {
    const unknown = crypto.randomUUID();
    const response = await hold(suite.app, "u", [seatIds[0] as string, unknown]);
    expect(response.body.seatIds).toEqual([unknown]);
  });

  const invalidSessions: [string, Record<string, unknown>][] = [
    ["three decimals in the price", { ...SESSION, price: 10.005 }],
    ["a negative price", { ...SESSION, price: -1 }],
    ["a price as a string", { ...SESSION, price: "12.50" }],
    ["more than 10,000 seats", { ...SESSION, rowsCount: 101, seatsPerRow: 100 }],
    ["zero rows", { ...SESSION, rowsCount: 0 }],
    ["a fractional row count", { ...SESSION, rowsCount: 1.5 }],
    ["a start time without offset", { ...SESSION, startsAt: "2026-12-24 20:00" }],
    ["a missing room", { ...SESSION, room: undefined }],
    ["a blank movie", { ...SESSION, movieId: "   " }],
    ["an unknown field", { ...SESSION, discount: 5 }],
  ];

  it.each(invalidSessions)("a session with %s", async (_name, body) => {
    const before = await rowCounts();
    const response = await call(suite.app, "POST", "/sessions", body);
    expect(response.status).toBe(400);
    expect(response.body.code).toBe("VALIDATION_FAILED");
    expect(response.body.errors.length).toBeGreaterThan(0);
    expect(await rowCounts()).toEqual(before);
  });

  it.each([
    ["/sessions/not-a-uuid", 400, "VALIDATION_FAILED"],
    [`/sessions/${crypto.randomUUID()}`, 404, "SESSION_NOT_FOUND"],
    ["/reservations/123", 400, "VALIDATION_FAILED"],
    [`/reservations/${crypto.randomUUID()}`, 404, "RESERVATION_NOT_FOUND"],
    ["/sessions?limit=0", 400, "VALIDATION_FAILED"],
    ["/sessions?limit=abc", 400, "VALIDATION_FAILED"],
    ["/sessions?cursor=bm90LW91cnM", 400, "VALIDATION_FAILED"],
    ["/reservations/user/a%20b", 400, "VALIDATION_FAILED"],
    ["/nowhere", 404, "NOT_FOUND"],
  ])("GET %s", async (path, status, code) => {
    const response = await call(suite.app, "GET", path);
    expect(response.status).toBe(status);
    expect(response.body.code).toBe(code);
  });

  it("refuses paying or cancelling someone else's hold, and paying an unknown one", async () => {
    const held = await hold(suite.app, "owner", [seatIds[5] as string]);
    const before = await rowCounts();
    const pay = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, { userId: "thief" });
    expect(pay.status).toBe(403);
    expect(pay.body.code).toBe("RESERVATION_NOT_OWNED");
    const cancel = await call(suite.app, "POST", `/reservations/${held.body.id}/cancel`, { userId: "thief" });
    expect(cancel.status).toBe(403);
    const unknown = await call(suite.app, "POST", `/reservations/${crypto.randomUUID()}/pay`);
    expect(unknown.status).toBe(404);
    expect(await rowCounts()).toEqual(before);
  });

  it("takes an empty body declared as JSON for no body (clients that always send the header)", async () => {
    const empty = (path: string) =>
      suite.app.request(path, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": "0" },
        body: "",
      });
    const paid = await hold(suite.app, "owner", [seatIds[6] as string]);
    const pay = await empty(`/reservations/${paid.body.id}/pay`);
    expect(pay.status).toBe(200);
    expect((await pay.json()).status).toBe("CONFIRMED");
    const cancelled = await hold(suite.app, "owner", [seatIds[7] as string]);
    const cancel = await empty(`/reservations/${cancelled.body.id}/cancel`);
    expect(cancel.status).toBe(200);
    expect((await cancel.json()).status).toBe("CANCELLED");
    // A route whose body is required still refuses it, field by field, and changes nothing.
    const before = await rowCounts();
    const create = await empty("/sessions");
    expect(create.status).toBe(400);
    const problem = await create.json();
    expect(problem.code).toBe("VALIDATION_FAILED");
    expect(problem.errors.length).toBeGreaterThan(0);
    expect(await rowCounts()).toEqual(before);
  });

  it("serves the OpenAPI document and Swagger UI", async () => {
    const spec = await call(suite.app, "GET", "/openapi.json");
    expect(spec.status).toBe(200);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining([
        "/sessions",
        "/sessions/{id}",
        "/reservations",
        "/reservations/{id}/pay",
        "/sales/history/{userId}",
      ]),
    );
    const ui = await suite.app.request("/api-docs");
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("swagger");
  });
});
