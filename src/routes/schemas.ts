import { z } from "@hono/zod-openapi";
import { isStorableInstant, isStorableText } from "../booking/storable.ts";
import { REQUEST_ID_HEADER } from "./problem-docs.ts";

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

export { BODY_PROBLEMS, Problem, problems, REQUEST_ID_HEADER } from "./problem-docs.ts";

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
  .openapi("Reservation", {
    example: {
      id: "8d1f4c2a-6b7e-4f3a-9c5d-2e1b0a9f8c7d",
      sessionId: "0b9f6a52-4c1e-4d8e-9a57-2f1f0d6c9e31",
      userId: "alice",
      status: "PENDING",
      seatIds: ["5d2c8e17-93a4-4f0b-8e61-7a0c4b2d9f58", "a3e9b1c4-2d5f-4a68-b7c0-1e2f3a4b5c6d"],
      seats: [
        { id: "5d2c8e17-93a4-4f0b-8e61-7a0c4b2d9f58", row: "A", number: 1, label: "A1" },
        { id: "a3e9b1c4-2d5f-4a68-b7c0-1e2f3a4b5c6d", row: "A", number: 2, label: "A2" },
      ],
      totalPrice: 25,
      expiresAt: "2030-12-24T19:30:30.000Z",
      createdAt: "2030-12-24T19:30:00.000Z",
      sale: null,
    },
  });

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

type ResponseHeaders = Record<string, { description: string; schema: { type: "string" } }>;

/** Set on a replayed answer to a repeated Idempotency-Key. */
export const IDEMPOTENT_REPLAYED_HEADER: ResponseHeaders = {
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key",
    schema: { type: "string" },
  },
};

export function json<T extends z.ZodType>(schema: T, description: string, headers: ResponseHeaders = {}) {
  return {
    description,
    headers: { ...REQUEST_ID_HEADER, ...headers },
    content: { "application/json": { schema } },
  };
}
