/** The event catalogue. The routing key on `cinema.events` is the event type. */

export type ReservationCreated = {
  type: "reservation.created";
  data: {
    reservationId: string;
    sessionId: string;
    userId: string;
    seatIds: string[];
    totalPrice: number;
    expiresAt: string;
  };
};

export type ReservationExpired = {
  type: "reservation.expired";
  data: { reservationId: string; sessionId: string; userId: string; seatIds: string[]; expiredAt: string };
};

export type ReservationCancelled = {
  type: "reservation.cancelled";
  data: { reservationId: string; sessionId: string; userId: string; seatIds: string[] };
};

export type PaymentConfirmed = {
  type: "payment.confirmed";
  data: {
    reservationId: string;
    saleId: string;
    sessionId: string;
    userId: string;
    seatIds: string[];
    amount: number;
    paidAt: string;
  };
};

export type SeatReleased = {
  type: "seat.released";
  data: { seatId: string; sessionId: string; reservationId: string; reason: "expired" | "cancelled" };
};

export type DomainEvent =
  | ReservationCreated
  | ReservationExpired
  | ReservationCancelled
  | PaymentConfirmed
  | SeatReleased;

export type EventType = DomainEvent["type"];

/** The message body published to RabbitMQ. */
export type EventEnvelope = { id: string; type: EventType; occurredAt: string; data: DomainEvent["data"] };
