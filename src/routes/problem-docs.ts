import { z } from "@hono/zod-openapi";
import type { BookingError } from "../booking/errors.ts";
import { bookingProblem, PROBLEM_STATUS, PROBLEM_TITLE, type ProblemCode } from "./problem.ts";

/**
 * How a route documents its errors: `problems("SEAT_UNAVAILABLE", "SEAT_NOT_FOUND", ...)` lists
 * the codes it can answer, one argument per code; they are grouped by status, and each status gets
 * a schema whose `code` is exactly those codes (one component per code, with the extra fields that
 * code carries), an example per code and the headers it carries. INTERNAL_ERROR (500) is implied.
 * test/openapi-problems.test.ts fails when a route answers a code it does not list.
 */

const Id = z.uuid();

/** Every problem: RFC 9457 members, the stable `code`, the request id, and per-code extra fields. */
export const Problem = z
  .object({
    type: z.string().openapi({ example: "/problems/seat-unavailable" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ example: "SEAT_UNAVAILABLE" }),
    requestId: z.string().optional().openapi({ description: "The request's X-Request-Id" }),
  })
  .catchall(z.unknown())
  .openapi("Problem");

const ValidationIssue = z.object({
  path: z.string().openapi({ description: "Dotted path of the offending field; empty for the whole input" }),
  message: z.string(),
});

/** The fields a code adds to the envelope; a code not named here adds none. */
const FIELDS: Partial<Record<ProblemCode, z.ZodRawShape>> = {
  VALIDATION_FAILED: { errors: z.array(ValidationIssue).optional() },
  SESSION_NOT_FOUND: { sessionId: Id },
  SEAT_NOT_FOUND: { seatIds: z.array(Id) },
  SEATS_FROM_MULTIPLE_SESSIONS: { sessionIds: z.array(Id) },
  SEAT_UNAVAILABLE: { seatIds: z.array(Id).openapi({ description: "The seats already held or sold" }) },
  RESERVATION_NOT_FOUND: { reservationId: Id },
  RESERVATION_EXPIRED: { reservationId: Id },
  RESERVATION_CANCELLED: { reservationId: Id },
  RESERVATION_CONFIRMED: { reservationId: Id },
  RESERVATION_NOT_OWNED: { reservationId: Id },
  SEAT_NOT_IN_RESERVATION: { reservationId: Id, seatId: Id },
  RATE_LIMITED: { retryAfter: z.number().int().openapi({ description: "Seconds until the window resets" }) },
};

const SAMPLE_ID = "0b9f6a52-4c1e-4d8e-9a57-2f1f0d6c9e31";
const OTHER_ID = "5d2c8e17-93a4-4f0b-8e61-7a0c4b2d9f58";

/** Example bodies: the booking codes' real wording (bookingProblem), the others' typical detail. */
const BOOKING_SAMPLES: Partial<Record<ProblemCode, BookingError>> = {
  SESSION_NOT_FOUND: { code: "SESSION_NOT_FOUND", sessionId: SAMPLE_ID },
  SEAT_NOT_FOUND: { code: "SEAT_NOT_FOUND", seatIds: [SAMPLE_ID] },
  SEATS_FROM_MULTIPLE_SESSIONS: { code: "SEATS_FROM_MULTIPLE_SESSIONS", sessionIds: [SAMPLE_ID, OTHER_ID] },
  SEAT_UNAVAILABLE: { code: "SEAT_UNAVAILABLE", seatIds: [SAMPLE_ID, OTHER_ID] },
  RESERVATION_NOT_FOUND: { code: "RESERVATION_NOT_FOUND", reservationId: SAMPLE_ID },
  RESERVATION_EXPIRED: { code: "RESERVATION_EXPIRED", reservationId: SAMPLE_ID },
  RESERVATION_CANCELLED: { code: "RESERVATION_CANCELLED", reservationId: SAMPLE_ID },
  RESERVATION_CONFIRMED: { code: "RESERVATION_CONFIRMED", reservationId: SAMPLE_ID },
  RESERVATION_NOT_OWNED: { code: "RESERVATION_NOT_OWNED", reservationId: SAMPLE_ID },
  SEAT_NOT_IN_RESERVATION: { code: "SEAT_NOT_IN_RESERVATION", reservationId: SAMPLE_ID, seatId: OTHER_ID },
  IDEMPOTENCY_KEY_IN_USE: { code: "IDEMPOTENCY_KEY_IN_USE", key: "k" },
  IDEMPOTENCY_KEY_REUSED: { code: "IDEMPOTENCY_KEY_REUSED", key: "k" },
};
const OTHER_SAMPLES: Partial<Record<ProblemCode, { detail: string; extensions?: Record<string, unknown> }>> =
  {
    VALIDATION_FAILED: {
      detail: "seatIds: hold at most 10 seats at once",
      extensions: { errors: [{ path: "seatIds", message: "hold at most 10 seats at once" }] },
    },
    MALFORMED_JSON: { detail: "The request body is not valid JSON." },
    UNSUPPORTED_MEDIA_TYPE: { detail: "Send the request body as application/json." },
    PAYLOAD_TOO_LARGE: { detail: "Request bodies are limited to 65536 bytes." },
    SERVICE_UNAVAILABLE: {
      detail:
        "The database is unavailable. Retry shortly, with the same Idempotency-Key if you sent one: a change whose commit was cut off is then replayed, never made twice.",
    },
    RATE_LIMITED: { detail: "Too many holds requests; retry in 12 s.", extensions: { retryAfter: 12 } },
    UNAUTHENTICATED: { detail: "A bearer token is required." },
    INTERNAL_ERROR: { detail: "Something went wrong; the request id identifies it." },
  };

function example(code: ProblemCode) {
  const booking = BOOKING_SAMPLES[code];
  const sample = booking
    ? bookingProblem(booking)
    : { code, detail: `${PROBLEM_TITLE[code]}.`, ...OTHER_SAMPLES[code] };
  return {
    type: `/problems/${code.toLowerCase().replaceAll("_", "-")}`,
    title: PROBLEM_TITLE[code],
    status: PROBLEM_STATUS[code],
    detail: sample.detail,
    code,
    requestId: "3c9d1f0e-7b2a-4e65-8d14-6f0a9b8c7d21",
    ...sample.extensions,
  };
}

const pascal = (code: string) =>
  code
    .toLowerCase()
    .split("_")
    .map((word) => word[0]?.toUpperCase() + word.slice(1))
    .join("");

const perCode = new Map<ProblemCode, z.ZodObject>();

/** The component of one code (`SeatUnavailableProblem`), built once. */
export function problemSchema(code: ProblemCode): z.ZodObject {
  let schema = perCode.get(code);
  if (!schema) {
    schema = Problem.extend({
      code: z.literal(code),
      status: z.literal(PROBLEM_STATUS[code]),
      ...FIELDS[code],
    }).openapi(`${pascal(code)}Problem`, { example: example(code) });
    perCode.set(code, schema);
  }
  return schema;
}

const text = { type: "string" as const };

/** On every answer, successes included. */
export const REQUEST_ID_HEADER = {
  "X-Request-Id": {
    description: "The caller's X-Request-Id when it sent a sane one, else a new id",
    schema: text,
  },
};

const STATUS_HEADERS: Record<number, Record<string, { description: string; schema: typeof text }>> = {
  401: {
    "WWW-Authenticate": {
      description: "The Bearer challenge, on routes that take a bearer token",
      schema: text,
    },
  },
  429: {
    "Retry-After": { description: "Seconds until the rate-limit window resets", schema: text },
    RateLimit: { description: "The caller's standing (draft-ietf-httpapi-ratelimit-headers)", schema: text },
    "RateLimit-Policy": { description: "The policy that refused the request", schema: text },
  },
  503: { "Retry-After": { description: "Seconds after which a retry is sensible", schema: text } },
};

const STATUS_TEXT: Record<number, string> = {
  400: "Invalid request",
  401: "Not authenticated",
  403: "Not allowed for this user or role",
  404: "Not found",
  409: "Conflict with the current state",
  413: "Payload too large",
  415: "Unsupported media type",
  422: "Idempotency key reused with another body",
  429: "Rate limit exceeded",
  500: "Internal error",
  501: "Not available on this runtime",
  503: "A dependency is unavailable",
};

/** What every route with a JSON body can answer about the body itself, before it reads a field. */
export const BODY_PROBLEMS = [
  "VALIDATION_FAILED",
  "MALFORMED_JSON",
  "UNSUPPORTED_MEDIA_TYPE",
  "PAYLOAD_TOO_LARGE",
] as const satisfies readonly ProblemCode[];

/**
 * The error responses of a route, from the codes it can answer. A bare status (a number) is still
 * accepted for routes not yet converted: it documents the generic Problem, which the problems test
 * reports as undocumented codes.
 */
export function problems(...entries: (ProblemCode | number)[]) {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const entry of [...entries, "INTERNAL_ERROR" as const]) {
    const status = typeof entry === "number" ? entry : PROBLEM_STATUS[entry];
    const codes = byStatus.get(status) ?? [];
    if (typeof entry !== "number" && !codes.includes(entry)) codes.push(entry);
    byStatus.set(status, codes);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => {
      const schemas = codes.map(problemSchema);
      const [first, second, ...rest] = schemas;
      const schema =
        first === undefined
          ? Problem
          : second === undefined
            ? first
            : z.discriminatedUnion("code", [first, second, ...rest]);
      return [
        status,
        {
          description: `${STATUS_TEXT[status] ?? "Error"}${codes.length > 0 ? `: ${codes.join(", ")}` : ""}`,
          headers: { ...REQUEST_ID_HEADER, ...STATUS_HEADERS[status] },
          content: {
            "application/problem+json": {
              schema,
              ...(codes.length > 0 && {
                examples: Object.fromEntries(
                  codes.map((code) => [code, { summary: PROBLEM_TITLE[code], value: example(code) }]),
                ),
              }),
            },
          },
        },
      ];
    }),
  );
}
