/**
 * Every way a booking operation can be refused. Services return these as values; only the route
 * layer turns a code into an HTTP status.
 */
export type BookingError =
  | { code: "SESSION_NOT_FOUND"; sessionId: string }
  | { code: "SEAT_NOT_FOUND"; seatIds: string[] }
  | { code: "SEATS_FROM_MULTIPLE_SESSIONS"; sessionIds: string[] }
  | { code: "SEAT_UNAVAILABLE"; seatIds: string[] }
  | { code: "RESERVATION_NOT_FOUND"; reservationId: string }
  | { code: "RESERVATION_EXPIRED"; reservationId: string }
  | { code: "RESERVATION_CANCELLED"; reservationId: string }
  | { code: "RESERVATION_CONFIRMED"; reservationId: string }
  | { code: "RESERVATION_NOT_OWNED"; reservationId: string }
  | { code: "SEAT_NOT_IN_RESERVATION"; reservationId: string; seatId: string }
  | { code: "CATEGORY_NOT_FOUND"; sessionId: string; category: string }
  | { code: "NOT_ENOUGH_SEATS"; sessionId: string; quantity: number; category?: string }
  | { code: "SEATS_CONTENDED"; sessionId: string; quantity: number; attempts: number }
  | { code: "IDEMPOTENCY_KEY_IN_USE"; key: string }
  | { code: "IDEMPOTENCY_KEY_REUSED"; key: string };

export type BookingErrorCode = BookingError["code"];

export type Result<T> = { ok: true; value: T } | { ok: false; error: BookingError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(error: BookingError): Result<T> => ({ ok: false, error });
