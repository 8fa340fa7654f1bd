import { createRoute, z } from "@hono/zod-openapi";
import { beforeAll, describe, expect, it } from "vitest";
import { API_TAGS } from "../src/app.ts";
import { ApiError, PROBLEM_STATUS, type ProblemCode, problemResponse } from "../src/routes/problem.ts";
import { createRouter } from "../src/routes/router.ts";
import { json, problems, Reservation } from "../src/routes/schemas.ts";
import { createSessionVia, createTestApp, type TestApp, useTestApp } from "./support/app.ts";
import { checkingProblems, codesOf, type OpenApiDocument, operationsOf } from "./support/problem-contract.ts";

/**
 * The OpenAPI document as a client generator reads it, and the codes each route answers against
 * the codes it lists. Every request here goes through createTestApp's checking `request`, which
 * throws on a problem its operation does not list (as it does in every in-process suite); the
 * table below drives the failure paths, and the last test finds listed codes nothing drives.
 */
type Json = Record<string, unknown>;
const suite = useTestApp("pglite");
let doc: OpenApiDocument & { tags?: { name: string }[] };

beforeAll(async () => {
  doc = await (await suite.app.request("/openapi.json")).json();
});

function operations() {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      name: `${method.toUpperCase()} ${path}`,
      operation: operation as Json & { responses: Record<string, Json>; tags?: string[] },
    })),
  );
}

describe("the OpenAPI document", () => {
  it("tags every operation with a tag it declares", () => {
    const declared = (doc.tags ?? []).map((tag) => tag.name);
    expect(declared).toEqual(API_TAGS.map((tag) => tag.name));
    for (const { name, operation } of operations()) {
      expect(operation.tags, name).toHaveLength(1);
      expect(declared, name).toContain(operation.tags?.[0]);
    }
  });

  it("lists the codes of every error response, each under its own status, with an example each", () => {
    for (const { name, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const media = (response.content as Json | undefined)?.["application/problem+json"] as
          | Json
          | undefined;
        if (!media) continue;
        const codes = codesOf(doc, media.schema);
        expect(codes.length, `${name} ${status} lists no codes`).toBeGreaterThan(0);
        for (const code of codes)
          expect(PROBLEM_STATUS[code as ProblemCode], `${name} ${code}`).toBe(Number(status));
        const examples = media.examples as Record<string, { value: Json }>;
        expect(Object.keys(examples).sort(), `${name} ${status}`).toEqual([...codes].sort());
        for (const [code, { value }] of Object.entries(examples)) {
          expect(value, `${name} ${code}`).toMatchObject({ code, status: Number(status) });
        }
      }
    }
  });

  it("gives each code's schema the fields that code carries", () => {
    const schema = (name: string) => {
      const parts = (doc.components?.schemas?.[name] as { allOf: Json[] } | undefined)?.allOf ?? [];
      return parts[1] as { properties: Json; required?: string[] };
    };
    expect(schema("SeatUnavailableProblem").required).toEqual(["seatIds"]);
    expect(schema("SeatNotFoundProblem").required).toEqual(["seatIds"]);
    expect(schema("SeatsFromMultipleSessionsProblem").required).toEqual(["sessionIds"]);
    expect(schema("ReservationExpiredProblem").required).toEqual(["reservationId"]);
    expect(schema("SeatNotInReservationProblem").required).toEqual(["reservationId", "seatId"]);
    expect(Object.keys(schema("ValidationFailedProblem").properties)).toContain("errors");
    expect(schema("RateLimitedProblem").required).toEqual(["retryAfter"]);
  });

  it("shows a reservation by example, valid against its own schema", () => {
    const example = (doc.components?.schemas?.Reservation as Json | undefined)?.example;
    expect(Reservation.safeParse(example).success).toBe(true);
  });

  it("documents the headers: X-Request-Id on every JSON answer, Retry-After, Idempotent-Replayed, ETag", () => {
    for (const { name, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const content = Object.keys((response.content as Json | undefined) ?? {});
        const headers = Object.keys((response.headers as Json | undefined) ?? {});
        if (content.some((type) => type.endsWith("json")))
          expect(headers, `${name} ${status}`).toContain("X-Request-Id");
        const problem = content.includes("application/problem+json");
        if (problem && (status === "429" || status === "503"))
          expect(headers, `${name} ${status}`).toContain("Retry-After");
      }
    }
    const headersOf = (path: string, method: string, status: string) =>
      Object.keys(
        (doc.paths[path]?.[method] as { responses: Record<string, Json> } | undefined)?.responses[status]
          ?.headers ?? {},
      );
    expect(headersOf("/reservations", "post", "201")).toContain("Idempotent-Replayed");
    expect(headersOf("/reservations/{id}/pay", "post", "200")).toContain("Idempotent-Replayed");
    expect(headersOf("/reservations/{id}/cancel", "post", "200")).toContain("Idempotent-Replayed");
    expect(headersOf("/reservations/{id}/extend", "post", "200")).toContain("Idempotent-Replayed");
    expect(headersOf("/sessions/{id}/seats", "get", "200")).toContain("ETag");
  });
});

describe("the check every in-process suite runs", () => {
  function appAnswering(code: ProblemCode) {
    const route = createRoute({
      method: "get",
      path: "/things/{id}",
      responses: {
        200: json(z.object({}), "A thing"),
        ...problems("VALIDATION_FAILED", "SESSION_NOT_FOUND"),
      },
    });
    const app = createRouter().openapi(route, () => {
      throw new ApiError(code, "refused");
    });
    app.onError((error, c) => problemResponse(c, error as ApiError));
    return checkingProblems(app);
  }

  it("passes a code the operation lists", async () => {
    expect((await appAnswering("SESSION_NOT_FOUND").request("/things/1")).status).toBe(404);
  });

  it("fails a test on a code the operation does not list, naming the route and the fix", async () => {
    await expect(appAnswering("SEAT_UNAVAILABLE").request("/things/1")).rejects.toThrow(
      'GET /things/{id} answered 409 SEAT_UNAVAILABLE, which its OpenAPI responses do not list: add "SEAT_UNAVAILABLE" to its problems(...)',
    );
    await expect(appAnswering("SEAT_NOT_FOUND").request("/things/1")).rejects.toThrow(
      /answered 404 SEAT_NOT_FOUND/,
    );
  });
});

// ---- the failure paths, driven ----

type Context = {
  sessionId: string;
  seatIds: string[];
  otherSessionSeat: string;
  live: string;
  paid: string;
  cancelled: string;
  expired: string;
};
type Send = (app: TestApp, context: Context) => Response | Promise<Response>;

const MISSING = "00000000-0000-4000-8000-000000000000";
const SESSION_BODY = {
  movieId: "m",
  room: "r",
  startsAt: "2030-01-01T20:00:00Z",
  price: 10,
  rowsCount: 2,
  seatsPerRow: 4,
};

const send =
  (
    method: string,
    path: (context: Context) => string,
    body?: (context: Context) => unknown,
    headers = {},
  ): Send =>
  (app, context) =>
    app.request(path(context), {
      method,
      headers: body ? { "content-type": "application/json", ...headers } : headers,
      body: body ? JSON.stringify(body(context)) : undefined,
    });
const raw =
  (method: string, path: (context: Context) => string, body: string, type: string): Send =>
  (app, context) =>
    app.request(path(context), { method, headers: { "content-type": type }, body });
const tooLarge = (method: string, path: (context: Context) => string): Send =>
  raw(method, path, JSON.stringify({ filler: "x".repeat(70_000) }), "application/json");

/** The four ways any JSON body is refused, on one route. */
function bodyCases(name: string, method: string, path: (context: Context) => string) {
  return [
    [name, "VALIDATION_FAILED", send(method, path, () => ({ unknownField: 1 }))],
    [name, "MALFORMED_JSON", raw(method, path, "{", "application/json")],
    [name, "UNSUPPORTED_MEDIA_TYPE", raw(method, path, "{}", "text/plain")],
    [name, "PAYLOAD_TOO_LARGE", tooLarge(method, path)],
  ] as const;
}

const reservation = (pick: keyof Context) => (context: Context) => `/reservations/${context[pick]}`;
const idempotent = { "idempotency-key": "problems-test-key" };

const CASES: (readonly [string, ProblemCode, Send])[] = [
  ...bodyCases("POST /sessions", "POST", () => "/sessions"),
  [
    "POST /sessions",
    "IDEMPOTENCY_KEY_REUSED",
    async (app, context) => {
      await send(
        "POST",
        () => "/sessions",
        () => SESSION_BODY,
        idempotent,
      )(app, context);
      const otherRoom = () => ({ ...SESSION_BODY, room: "Another room" });
      return send("POST", () => "/sessions", otherRoom, idempotent)(app, context);
    },
  ],
  ["GET /sessions", "VALIDATION_FAILED", send("GET", () => "/sessions?limit=0")],
  ["GET /sessions/{id}", "VALIDATION_FAILED", send("GET", () => "/sessions/not-a-uuid")],
  ["GET /sessions/{id}", "SESSION_NOT_FOUND", send("GET", () => `/sessions/${MISSING}`)],
  ["GET /sessions/{id}/seats", "VALIDATION_FAILED", send("GET", () => "/sessions/not-a-uuid/seats")],
  ["GET /sessions/{id}/seats", "SESSION_NOT_FOUND", send("GET", () => `/sessions/${MISSING}/seats`)],
  ["GET /sessions/{id}/stream", "VALIDATION_FAILED", send("GET", () => "/sessions/not-a-uuid/stream")],
  // No seat watch in these deps: the answer of a runtime that cannot stream (Workers).
  [
    "GET /sessions/{id}/stream",
    "STREAM_NOT_AVAILABLE",
    send("GET", (c) => `/sessions/${c.sessionId}/stream`),
  ],

  ...bodyCases("POST /reservations", "POST", () => "/reservations"),
  [
    "POST /reservations",
    "SEAT_NOT_FOUND",
    send(
      "POST",
      () => "/reservations",
      () => ({ userId: "u", seatIds: [MISSING] }),
    ),
  ],
  [
    "POST /reservations",
    "SEATS_FROM_MULTIPLE_SESSIONS",
    send(
      "POST",
      () => "/reservations",
      (c) => ({ userId: "u", seatIds: [c.seatIds[6], c.otherSessionSeat] }),
    ),
  ],
  [
    "POST /reservations",
    "SEAT_UNAVAILABLE",
    send(
      "POST",
      () => "/reservations",
      (c) => ({ userId: "someone-else", seatIds: [c.seatIds[0]] }),
    ),
  ],
  [
    "POST /reservations",
    "IDEMPOTENCY_KEY_REUSED",
    send(
      "POST",
      () => "/reservations",
      (c) => ({ userId: "owner", seatIds: [c.seatIds[6]] }),
      idempotent,
    ),
  ],
  [
    "POST /reservations",
    "SESSION_NOT_FOUND",
    send(
      "POST",
      () => "/reservations",
      () => ({ userId: "u", sessionId: MISSING, quantity: 1 }),
    ),
  ],
  [
    "POST /reservations",
    "CATEGORY_NOT_FOUND",
    send(
      "POST",
      () => "/reservations",
      (c) => ({ userId: "u", sessionId: c.sessionId, quantity: 1, category: "nope" }),
    ),
  ],
  [
    "POST /reservations",
    "NOT_ENOUGH_SEATS",
    send(
      "POST",
      () => "/reservations",
      (c) => ({ userId: "u", sessionId: c.sessionId, quantity: 8 }),
    ),
  ],
  ["GET /reservations/{id}", "VALIDATION_FAILED", send("GET", () => "/reservations/not-a-uuid")],
  ["GET /reservations/{id}", "RESERVATION_NOT_FOUND", send("GET", () => `/reservations/${MISSING}`)],

  ...bodyCases("POST /reservations/{id}/pay", "POST", (c) => `${reservation("live")(c)}/pay`),
  [
    "POST /reservations/{id}/pay",
    "RESERVATION_NOT_FOUND",
    send("POST", () => `/reservations/${MISSING}/pay`),
  ],
  [
    "POST /reservations/{id}/pay",
    "RESERVATION_NOT_OWNED",
    send(
      "POST",
      (c) => `${reservation("live")(c)}/pay`,
      () => ({ userId: "not-the-owner" }),
    ),
  ],
  [
    "POST /reservations/{id}/pay",
    "RESERVATION_EXPIRED",
    send("POST", (c) => `${reservation("expired")(c)}/pay`),
  ],
  [
    "POST /reservations/{id}/pay",
    "RESERVATION_CANCELLED",
    send("POST", (c) => `${reservation("cancelled")(c)}/pay`),
  ],
  [
    "POST /reservations/{id}/pay",
    "IDEMPOTENCY_KEY_REUSED",
    send(
      "POST",
      (c) => `${reservation("paid")(c)}/pay`,
      () => ({ userId: "owner" }),
      idempotent,
    ),
  ],

  ...bodyCases("POST /reservations/{id}/cancel", "POST", (c) => `${reservation("live")(c)}/cancel`),
  [
    "POST /reservations/{id}/cancel",
    "RESERVATION_NOT_FOUND",
    send("POST", () => `/reservations/${MISSING}/cancel`),
  ],
  [
    "POST /reservations/{id}/cancel",
    "RESERVATION_NOT_OWNED",
    send(
      "POST",
      (c) => `${reservation("live")(c)}/cancel`,
      () => ({ userId: "not-the-owner" }),
    ),
  ],
  [
    "POST /reservations/{id}/cancel",
    "RESERVATION_EXPIRED",
    send("POST", (c) => `${reservation("expired")(c)}/cancel`),
  ],
  [
    "POST /reservations/{id}/cancel",
    "RESERVATION_CONFIRMED",
    send("POST", (c) => `${reservation("paid")(c)}/cancel`),
  ],
  [
    "POST /reservations/{id}/cancel",
    "IDEMPOTENCY_KEY_REUSED",
    async (app, context) => {
      const path = (c: Context) => `${reservation("cancelled")(c)}/cancel`;
      await send("POST", path, () => ({}), idempotent)(app, context);
      return send("POST", path, () => ({ userId: "owner" }), idempotent)(app, context);
    },
  ],

  ...bodyCases("POST /reservations/{id}/extend", "POST", (c) => `${reservation("live")(c)}/extend`),
  [
    "POST /reservations/{id}/extend",
    "RESERVATION_NOT_FOUND",
    send(
      "POST",
      () => `/reservations/${MISSING}/extend`,
      () => ({ seconds: 10 }),
    ),
  ],
  ...(
    [
      ["RESERVATION_NOT_OWNED", "live", { seconds: 10, userId: "not-the-owner" }],
      ["RESERVATION_EXPIRED", "expired", { seconds: 10 }],
      ["RESERVATION_CANCELLED", "cancelled", { seconds: 10 }],
      ["RESERVATION_CONFIRMED", "paid", { seconds: 10 }],
    ] as const
  ).map(
    ([code, pick, body]) =>
      [
        "POST /reservations/{id}/extend",
        code,
        send(
          "POST",
          (c) => `${reservation(pick)(c)}/extend`,
          () => body,
        ),
      ] as const,
  ),
  [
    "POST /reservations/{id}/extend",
    "IDEMPOTENCY_KEY_REUSED",
    async (app, context) => {
      const path = (c: Context) => `${reservation("live")(c)}/extend`;
      await send("POST", path, () => ({ seconds: 10 }), idempotent)(app, context);
      return send("POST", path, () => ({ seconds: 11 }), idempotent)(app, context);
    },
  ],

  [
    "DELETE /reservations/{id}/seats/{seatId}",
    "VALIDATION_FAILED",
    send("DELETE", (c) => `${reservation("live")(c)}/seats/not-a-uuid`),
  ],
  [
    "DELETE /reservations/{id}/seats/{seatId}",
    "RESERVATION_NOT_FOUND",
    send("DELETE", () => `/reservations/${MISSING}/seats/${MISSING}`),
  ],
  [
    "DELETE /reservations/{id}/seats/{seatId}",
    "SEAT_NOT_IN_RESERVATION",
    send("DELETE", (c) => `${reservation("live")(c)}/seats/${c.seatIds[5]}`),
  ],
  ...(
    [
      ["RESERVATION_NOT_OWNED", "live", 0, "?userId=not-the-owner"],
      ["RESERVATION_EXPIRED", "expired", 4, ""],
      ["RESERVATION_CANCELLED", "cancelled", 3, ""],
      ["RESERVATION_CONFIRMED", "paid", 2, ""],
    ] as const
  ).map(
    ([code, pick, seat, query]) =>
      [
        "DELETE /reservations/{id}/seats/{seatId}",
        code,
        send("DELETE", (c) => `${reservation(pick)(c)}/seats/${c.seatIds[seat]}${query}`),
      ] as const,
  ),

  ["GET /reservations/user/{userId}", "VALIDATION_FAILED", send("GET", () => "/reservations/user/a%20b")],
  ["GET /me/reservations", "VALIDATION_FAILED", send("GET", () => "/me/reservations?limit=0")],
  ["GET /me/reservations", "UNAUTHENTICATED", send("GET", () => "/me/reservations")],
  ["GET /sales/history/{userId}", "VALIDATION_FAILED", send("GET", () => "/sales/history/a%20b")],
  ["GET /me/sales", "VALIDATION_FAILED", send("GET", () => "/me/sales?limit=0")],
  ["GET /me/sales", "UNAUTHENTICATED", send("GET", () => "/me/sales")],
  ["GET /metrics", "METRICS_NOT_COLLECTED", send("GET", () => "/metrics")],
  [
    "POST /internal/expire/{reservationId}",
    "VALIDATION_FAILED",
    send("POST", () => "/internal/expire/not-a-uuid"),
  ],
  ["POST /internal/expire/{reservationId}", "NOT_FOUND", send("POST", () => `/internal/expire/${MISSING}`)],
  ["GET /admin/reconcile", "VALIDATION_FAILED", send("GET", () => "/admin/reconcile?outboxMaxAgeSeconds=-1")],
];

/**
 * Listed codes this file does not drive ("CODE" for every route, or "METHOD /path CODE"), with the
 * suite that meets them through the same checking app. Everything else a route lists must appear
 * in CASES: a code added to a route takes its line in problems(...) and a line here or there.
 */
const DRIVEN_ELSEWHERE: Record<string, string> = {
  "GET /sessions/{id}/stream SESSION_NOT_FOUND": "needs a seat watch (seat-stream.test.ts)",
  INTERNAL_ERROR: "any route; an unexpected error (logging.test.ts)",
  SERVICE_UNAVAILABLE: "any route touching the database (database-down.test.ts)",
  UNAUTHENTICATED: "bearer tokens (auth.test.ts); the metrics token (metrics.test.ts)",
  FORBIDDEN: "auth.test.ts",
  USER_MISMATCH: "auth.test.ts",
  RATE_LIMITED: "rate-limit.test.ts",
  IDEMPOTENCY_KEY_IN_USE: "two requests with one key at once (idempotency.test.ts)",
  "POST /reservations SEATS_CONTENDED":
    "best-available holds racing for the same seats: no suite drives it yet",
  INVALID_SIGNATURE: "QStash callbacks (qstash-expiry.test.ts)",
  HOLD_NOT_DUE: "QStash callbacks (qstash-expiry.test.ts)",
};

describe("the codes each route answers are the codes it lists", () => {
  const context = {} as Context;

  beforeAll(async () => {
    const app = suite.app;
    const created = await createSessionVia(app, SESSION_BODY);
    const other = await createSessionVia(app, SESSION_BODY);
    context.sessionId = created.session.id;
    context.seatIds = created.seatIds;
    context.otherSessionSeat = other.seatIds[0] as string;
    const holdOf = async (target: TestApp, seatIds: string[], headers = {}) => {
      const response = await send(
        "POST",
        () => "/reservations",
        () => ({ userId: "owner", seatIds }),
        headers,
      )(target, context);
      expect(response.status).toBe(201);
      return ((await response.json()) as { id: string }).id;
    };
    context.live = await holdOf(app, [context.seatIds[0] as string, context.seatIds[1] as string]);
    context.paid = await holdOf(app, [context.seatIds[2] as string]);
    const paid = await send(
      "POST",
      (c) => `${reservation("paid")(c)}/pay`,
      () => ({}),
      idempotent,
    )(app, context);
    expect(paid.status).toBe(200);
    context.cancelled = await holdOf(app, [context.seatIds[3] as string]);
    expect((await send("POST", (c) => `${reservation("cancelled")(c)}/cancel`)(app, context)).status).toBe(
      200,
    );
    // A hold of one second, on the same database, past its time.
    const shortHolds = createTestApp(suite.database.db, { reservationTtlSeconds: 1 });
    context.expired = await holdOf(shortHolds, [context.seatIds[4] as string]);
    await holdOf(app, [context.seatIds[7] as string], idempotent);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  });

  it.each(CASES)("%s answers %s", async (_operation, code, request) => {
    const response = await request(suite.app, context);
    const body = (await response.json()) as { code: string };
    expect(body.code).toBe(code);
    expect(response.status).toBe(PROBLEM_STATUS[code]);
  });

  it("leaves no listed code undriven", () => {
    const driven = new Set(CASES.map(([operation, code]) => `${operation} ${code}`));
    const undriven = operationsOf(doc).flatMap((operation) =>
      [...operation.codes.values()]
        .flatMap((codes) => [...codes])
        .map((code): [string, string] => [code, `${operation.method} ${operation.template} ${code}`])
        .filter(([code, entry]) => !driven.has(entry) && !DRIVEN_ELSEWHERE[code] && !DRIVEN_ELSEWHERE[entry])
        .map(([, entry]) => entry),
    );
    expect(undriven).toEqual([]);
  });
});
