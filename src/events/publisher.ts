import type { EventEnvelope } from "./types.ts";

/** One outbox row on its way to the broker. `seq` orders the events of one aggregate. */
export type OutgoingEvent = {
  seq: number;
  aggregateId: string;
  envelope: EventEnvelope;
};

/**
 * The broker as the relay sees it (the AMQP adapter is `amqp-publisher.ts`; tests pass fakes).
 * `publish` resolves only once the broker has taken responsibility for the message (a publisher
 * confirm), so the relay can mark the row published; it rejects on a nack or a lost connection.
 */
export interface EventPublisher {
  /** Resolves once a connection is open, opening one if needed; rejects when the broker is unreachable. */
  ready(): Promise<void>;
  publish(event: OutgoingEvent): Promise<void>;
  isConnected(): boolean;
  /** Drops the connection after a failure, so the next `ready()` starts afresh. */
  reset(): Promise<void>;
  close(): Promise<void>;
}
