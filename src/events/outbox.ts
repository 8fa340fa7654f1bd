import type { Executor } from "../db/database.ts";
import { outbox } from "../db/schema.ts";
import type { DomainEvent } from "./types.ts";

/**
 * Writes events to the outbox inside the caller's transaction, so an event exists exactly when
 * the change it describes committed. `aggregateId` (the reservation) keeps per-reservation order.
 */
export async function appendEvents(tx: Executor, aggregateId: string, events: DomainEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx
    .insert(outbox)
    .values(events.map((event) => ({ type: event.type, aggregateId, payload: event.data })));
}
