import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { BookingError, BookingErrorCode } from "../booking/errors.ts";

/** Stable codes for every error the API answers; clients branch on these, never on text. */
export type ProblemCode =
  | BookingErrorCode
  | "VALIDATION_FAILED"
  | "MALFORMED_JSON"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "PAYLOAD_TOO_LARGE"
  | "NOT_FOUND"
  | "SERVICE_UNAVAILABLE"
  | "METRICS_NOT_COLLECTED"
  | "STREAM_NOT_AVAILABLE"
  | "INVALID_SIGNATURE"
  | "HOLD_NOT_DUE"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "USER_MISMATCH"
  | "RATE_LIMITED"
  | "INTERNAL_ERROR";

const STATUS: Record<ProblemCode, ContentfulStatusCode> = {
  SESSION_NOT_FOUND: 404,
  SEAT_NOT_FOUND: 404,
  SEATS_FROM_MULTIPLE_SESSIONS: 400,
  SEAT_UNAVAILABLE: 409,
  RESERVATION_NOT_FOUND: 404,
  RESERVATION_EXPIRED: 409,
  RESERVATION_CANCELLED: 409,
  RESERVATION_CONFIRMED: 409,
  RESERVATION_NOT_OWNED: 403,
  SEAT_NOT_IN_RESERVATION: 404,
  CATEGORY_NOT_FOUND: 404,
  NOT_ENOUGH_SEATS: 409,
  SEATS_CONTENDED: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  VALIDATION_FAILED: 400,
  MALFORMED_JSON: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  NOT_FOUND: 404,
  SERVICE_UNAVAILABLE: 503,
  METRICS_NOT_COLLECTED: 501,
  STREAM_NOT_AVAILABLE: 501,
  INVALID_SIGNATURE: 401,
  HOLD_NOT_DUE: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  USER_MISMATCH: 403,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
};

const TITLE: Record<ProblemCode, string> = {
  SESSION_NOT_FOUND: "Session not found",
  SEAT_NOT_FOUND: "Seat not found",
  SEATS_FROM_MULTIPLE_SESSIONS: "Seats belong to more than one session",
  SEAT_UNAVAILABLE: "Seat unavailable",
  RESERVATION_NOT_FOUND: "Reservation not found",
  RESERVATION_EXPIRED: "Reservation expired",
  RESERVATION_CANCELLED: "Reservation cancelled",
  RESERVATION_CONFIRMED: "Reservation already paid",
  RESERVATION_NOT_OWNED: "Reservation belongs to another user",
  SEAT_NOT_IN_RESERVATION: "Seat not in this reservation",
  CATEGORY_NOT_FOUND: "Price category not found",
  NOT_ENOUGH_SEATS: "Not enough seats available",
  SEATS_CONTENDED: "Seats taken by other buyers meanwhile",
  IDEMPOTENCY_KEY_IN_USE: "Idempotency key in use",
  IDEMPOTENCY_KEY_REUSED: "Idempotency key reused with another request",
  VALIDATION_FAILED: "Invalid request",
  MALFORMED_JSON: "Malformed JSON",
  UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
  PAYLOAD_TOO_LARGE: "Payload too large",
  NOT_FOUND: "Not found",
  SERVICE_UNAVAILABLE: "Service unavailable",
  METRICS_NOT_COLLECTED: "Metrics not collected",
  STREAM_NOT_AVAILABLE: "Seat changes cannot be streamed here",
  INVALID_SIGNATURE: "Invalid signature",
  HOLD_NOT_DUE: "Hold not due yet",
  UNAUTHENTICATED: "Authentication required",
  FORBIDDEN: "Forbidden",
  USER_MISMATCH: "userId is not the token's subject",
  RATE_LIMITED: "Too many requests",
  INTERNAL_ERROR: "Internal error",
};

const TYPE = Object.fromEntries(
  Object.keys(STATUS).map((code) => [code, `/problems/${code.toLowerCase().replaceAll("_", "-")}`]),
) as Record<ProblemCode, string>;

/** For the OpenAPI document (problem-docs.ts): each code's status and title. */
export { STATUS as PROBLEM_STATUS, TITLE as PROBLEM_TITLE };

/** An error answer as data: a route returns it, for an outcome it expects, or throws it as an ApiError. */
export type Problem = { code: ProblemCode; detail: string; extensions?: Record<string, unknown> };

/** What the HTTP layer throws; `onError` renders it as application/problem+json (RFC 9457). */
export class ApiError extends HTTPException implements Problem {
  readonly code: ProblemCode;
  readonly detail: string;
  readonly extensions: Record<string, unknown>;

  constructor(code: ProblemCode, detail: string, extensions: Record<string, unknown> = {}) {
    super(STATUS[code], { message: detail });
    this.code = code;
    this.detail = detail;
    this.extensions = extensions;
  }
}

/** 400 VALIDATION_FAILED about one field (`""`: the whole request), with the `errors` list it always carries. */
export function invalidInput(path: string, message: string): ApiError {
  return new ApiError("VALIDATION_FAILED", path ? `${path}: ${message}` : message, {
    errors: [{ path, message }],
  });
}

export function problemResponse(
  c: Context,
  problem: Problem,
  headers: Record<string, string> = {},
): Response {
  const status = STATUS[problem.code];
  const body = {
    type: TYPE[problem.code],
    title: TITLE[problem.code],
    status,
    detail: problem.detail,
    code: problem.code,
    requestId: c.get("requestId") as string | undefined,
    ...problem.extensions,
  };
  return c.body(JSON.stringify(body), status, { ...headers, "content-type": "application/problem+json" });
}

/**
 * A route's answer for an outcome it expects (a refusal, a missing row). Typed `never` so that any
 * handler can return it: its problem statuses are listed by `problems(...)` in the route for the
 * document, where the handler's return type cannot see them.
 */
export function answerProblem(c: Context, problem: Problem): never {
  return problemResponse(c, problem) as never;
}

/**
 * A refusal of the booking layer as the API's answer. Refusals are expected outcomes (a crowd of
 * buyers of one seat is nearly all refusals), so they are returned, never thrown: no stack to capture.
 */
export function bookingProblem(error: BookingError): Problem {
  switch (error.code) {
    case "SESSION_NOT_FOUND":
      return problem(error.code, `Session ${error.sessionId} does not exist.`, {
        sessionId: error.sessionId,
      });
    case "SEAT_NOT_FOUND":
      return problem(error.code, `Unknown seat ids: ${error.seatIds.join(", ")}.`, {
        seatIds: error.seatIds,
      });
    case "SEATS_FROM_MULTIPLE_SESSIONS":
      return problem(error.code, "All seats of one reservation must belong to one session.", {
        sessionIds: error.sessionIds,
      });
    case "SEAT_UNAVAILABLE":
      return problem(error.code, `Seats already held or sold: ${error.seatIds.join(", ")}.`, {
        seatIds: error.seatIds,
      });
    case "RESERVATION_NOT_FOUND":
    case "RESERVATION_EXPIRED":
    case "RESERVATION_CANCELLED":
    case "RESERVATION_CONFIRMED":
    case "RESERVATION_NOT_OWNED":
      return problem(error.code, reservationDetail(error.code, error.reservationId), {
        reservationId: error.reservationId,
      });
    case "SEAT_NOT_IN_RESERVATION":
      return problem(error.code, `Seat ${error.seatId} is not held by reservation ${error.reservationId}.`, {
        reservationId: error.reservationId,
        seatId: error.seatId,
      });
    case "CATEGORY_NOT_FOUND":
      return problem(error.code, `Session ${error.sessionId} has no price category ${error.category}.`, {
        sessionId: error.sessionId,
        category: error.category,
      });
    case "NOT_ENOUGH_SEATS":
      return problem(
        error.code,
        `Fewer than ${error.quantity} seats${error.category ? ` of category ${error.category}` : ""} are free in session ${error.sessionId}.`,
        { sessionId: error.sessionId, quantity: error.quantity, category: error.category },
      );
    case "SEATS_CONTENDED":
      return problem(
        error.code,
        `Other buyers took the best ${error.quantity} seats first ${error.attempts} times in a row; retry.`,
        { sessionId: error.sessionId, quantity: error.quantity },
      );
    case "IDEMPOTENCY_KEY_IN_USE":
      return problem(
        error.code,
        "A request with this Idempotency-Key is still being processed; retry later.",
      );
    case "IDEMPOTENCY_KEY_REUSED":
      return problem(error.code, "This Idempotency-Key was already used with a different request body.");
  }
}

function problem(code: ProblemCode, detail: string, extensions?: Record<string, unknown>): Problem {
  return { code, detail, extensions };
}

function reservationDetail(code: BookingErrorCode, id: string): string {
  switch (code) {
    case "RESERVATION_NOT_FOUND":
      return `Reservation ${id} does not exist.`;
    case "RESERVATION_EXPIRED":
      return `Reservation ${id} has expired; its seats were released.`;
    case "RESERVATION_CANCELLED":
      return `Reservation ${id} was cancelled.`;
    case "RESERVATION_CONFIRMED":
      return `Reservation ${id} is already paid.`;
    default:
      return `Reservation ${id} belongs to another user.`;
  }
}
