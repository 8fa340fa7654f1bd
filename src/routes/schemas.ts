import { z } from "@hono/zod-openapi";
import { isStorableInstant, isStorableText } from "../booking/storable.ts";

/** Request and response schemas shared by the resource routers. */

export const Uuid = z.uuid({ error: "must be a UUID" });

/**
 * Free text a request may carry into the database: no NUL and no unpaired surrogate, which
 * PostgreSQL would refuse or the driver would silently replace. Every free-text field uses it.
 */
export function storableText() {
  return z.string().refine(isStorableText, "must not contain NUL or unpaired surrogate characters");
}

/** An ISO 8601 instant with an offset, from 1970 to the end of 9999 (UTC). */
export const Instant = z.iso
  .datetime({ offset: true })
  .refine((text) => isStorableInstant(Date.parse(text)), "must lie between 1970 and the end of 9999 (UTC)");

export const UserId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@|+-]+$/, "may contain letters, digits and . _ : @ | + - only")
  .openapi({ example: "user-42" });

export const IdempotencyKeyHeader = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")
    .optional()
    .openapi({ description: "Makes a retry of this request safe: the first response is replayed." }),
});

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ example: "SEAT_UNAVAILABLE" }),
    requestId: z.string().optional(),
  })
  .catchall(z.unknown())
  .openapi("Problem");

export function problems(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Missing or invalid bearer token (WWW-Authenticate: Bearer)",
    403: "Not allowed for this user or role",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Idempotency key reused with another body",
    429: "Rate limit exceeded (Retry-After, RateLimit and RateLimit-Policy headers)",
    503: "A dependency is unavailable",
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: descriptions[status] ?? "Error",
        content: { "application/problem+json": { schema: Problem } },
      },
    ]),
  );
}

export const SeatStatus = z.enum(["AVAILABLE", "HELD", "SOLD"]);

export const Seat = z
  .object({
    id: Uuid,
    row: z.string(),
    number: z.number().int(),
    label: z.string(),
    category: z
      .string()
      .openapi({ description: "The key of the seat's price category", example: "standard" }),
    status: SeatStatus,
  })
  .openapi("Seat");

export const PriceCategory = z
  .object({ key: z.string(), name: z.string(), price: z.number() })
  .openapi("PriceCategory");

export const Session = z
  .object({
    id: Uuid,
    movieId: z.string(),
    room: z.string(),
    startsAt: z.string(),
    price: z.number(),
    rowsCount: z.number().int(),
    seatsPerRow: z.number().int(),
    totalSeats: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("Session");

export const SessionDetail = Session.extend({
  categories: z.array(PriceCategory),
  counts: z.object({
    total: z.number().int(),
    available: z.number().int(),
    held: z.number().int(),
    sold: z.number().int(),
  }),
  seats: z.array(Seat),
}).openapi("SessionDetail");

export const SeatStatuses = z
  .object({
    sessionId: Uuid,
    counts: z.object({
      total: z.number().int(),
      available: z.number().int(),
      held: z.number().int(),
      sold: z.number().int(),
    }),
    seats: z.array(z.object({ id: Uuid, status: SeatStatus })),
  })
  .openapi("SeatStatuses");

export const SessionPage = z
  .object({ items: z.array(Session), nextCursor: z.string().nullable() })
  .openapi("SessionPage");

export const ReservedSeat = z
  .object({ id: Uuid, row: z.string(), number: z.number().int(), label: z.string() })
  .openapi("ReservedSeat");

export const Reservation = z
  .object({
    id: Uuid,
    sessionId: Uuid,
    userId: z.string(),
    status: z.enum(["PENDING", "CONFIRMED", "EXPIRED", "CANCELLED"]),
    seatIds: z.array(Uuid),
    seats: z.array(ReservedSeat),
    totalPrice: z.number(),
    expiresAt: z.string(),
    createdAt: z.string(),
    sale: z.object({ id: Uuid, amount: z.number(), paidAt: z.string() }).nullable(),
  })
  .openapi("Reservation");

export const Purchase = z
  .object({
    saleId: Uuid,
    reservationId: Uuid,
    session: z.object({ id: Uuid, movieId: z.string(), room: z.string(), startsAt: z.string() }),
    seats: z.array(z.string()),
    amount: z.number(),
    paidAt: z.string(),
  })
  .openapi("Purchase");

export const ListLimit = z.coerce.number().int().min(1).max(200).default(50);

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}
