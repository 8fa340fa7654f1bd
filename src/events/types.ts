import { z } from "zod";

/**
 * The event catalogue: one zod schema per event type, the one source of every payload's shape.
 * The TypeScript types below are inferred from them, every writer builds its payload against
 * those types, and a test parses every outbox row the suites write against these schemas (so a
 * payload completed in SQL, like the times only the database knows, cannot drift from them).
 * The routing key on `cinema.events` is the event type.
 */

const id = z.uuid();
/** ISO-8601 UTC with milliseconds, as every writer formats times. */
const instant = z.iso.datetime({ precision: 3 });
const seatIds = z.array(id).min(1);
const amount = z.number().nonnegative();

export const eventSchemas = {
  "reservation.created": z.strictObject({
    reservationId: id,
    sessionId: id,
    userId: z.string().min(1),
    seatIds,
    totalPrice: amount,
    expiresAt: instant,
  }),
  "reservation.expired": z.strictObject({
    reservationId: id,
    sessionId: id,
    userId: z.string().min(1),
    seatIds,
    expiredAt: instant,
  }),
  "reservation.cancelled": z.strictObject({
    reservationId: id,
    sessionId: id,
    userId: z.string().min(1),
    seatIds,
  }),
  "payment.confirmed": z.strictObject({
    reservationId: id,
    saleId: id,
    sessionId: id,
    userId: z.string().min(1),
    seatIds,
    amount,
    paidAt: instant,
  }),
  "seat.released": z.strictObject({
    seatId: id,
    sessionId: id,
    reservationId: id,
    reason: z.enum(["expired", "cancelled", "released"]),
  }),
  "reservation.extended": z.strictObject({
    reservationId: id,
    sessionId: id,
    userId: z.string().min(1),
    seatIds,
    expiresAt: instant,
  }),
} as const;

type Schemas = typeof eventSchemas;
export type EventType = keyof Schemas;

type EventOf<T extends EventType> = { type: T; data: z.infer<Schemas[T]> };

export type ReservationCreated = EventOf<"reservation.created">;
export type ReservationExpired = EventOf<"reservation.expired">;
export type ReservationCancelled = EventOf<"reservation.cancelled">;
export type PaymentConfirmed = EventOf<"payment.confirmed">;
export type SeatReleased = EventOf<"seat.released">;
export type ReservationExtended = EventOf<"reservation.extended">;

export type DomainEvent =
  | ReservationCreated
  | ReservationExpired
  | ReservationCancelled
  | PaymentConfirmed
  | SeatReleased
  | ReservationExtended;

/** The message body published to RabbitMQ. */
export type EventEnvelope = { id: string; type: EventType; occurredAt: string; data: DomainEvent["data"] };

/** Checks a stored or received event against its type's schema; answers the problems, none when valid. */
export function eventProblems(type: string, data: unknown): string[] {
  const schema = eventSchemas[type as EventType];
  if (!schema) return [`unknown event type ${JSON.stringify(type)}`];
  const parsed = schema.safeParse(data);
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}
