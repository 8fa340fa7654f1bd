import { settleWithin } from "../deadline.ts";
import type { ClaimedEvent } from "./outbox-queries.ts";
import type { EventPublisher, OutgoingEvent } from "./publisher.ts";

/**
 * Keeps, for each aggregate, only the claimed events with no earlier unpublished event missing from
 * the batch. Two relays can claim different batches of one reservation (SKIP LOCKED hands the
 * second one the rows after the first one's); without this check the second could publish
 * event 3 while the first is still publishing events 1 and 2. Dropped rows stay unpublished and
 * are claimed again once their predecessors are out.
 *
 * This relies on the writers of one reservation taking turns on its row lock, so an event that
 * commits later also has a larger `seq` (an uncommitted earlier event of the same reservation
 * cannot exist).
 */
export function keepReservationOrder(claimed: readonly ClaimedEvent[]): OutgoingEvent[] {
  const keptPerAggregate = new Map<string, number>();
  const blocked = new Set<string>();
  const kept: OutgoingEvent[] = [];
  for (const { pendingBefore, ...event } of claimed) {
    if (blocked.has(event.aggregateId)) continue;
    const before = keptPerAggregate.get(event.aggregateId) ?? 0;
    if (pendingBefore !== before) {
      blocked.add(event.aggregateId);
      continue;
    }
    keptPerAggregate.set(event.aggregateId, before + 1);
    kept.push(event);
  }
  return kept;
}

export type PublishOutcome = {
  /** The `seq` of every event the broker confirmed: per aggregate, always a prefix of its events. */
  confirmed: number[];
  /** The first refusal, lost connection or timeout, if any. */
  failure?: unknown;
};

/**
 * Publishes in rounds: round n sends the n-th event of every aggregate at once and waits for their
 * confirms before the next round. Different reservations are pipelined; within one reservation an
 * event is sent only after the broker confirmed the one before, so a refused or lost message can
 * never be overtaken by its successor. After a failure no further round starts.
 */
export async function publishInOrder(
  publisher: EventPublisher,
  events: readonly OutgoingEvent[],
  confirmTimeoutMs: number,
): Promise<PublishOutcome> {
  const queues = new Map<string, OutgoingEvent[]>();
  for (const event of events) {
    const queue = queues.get(event.aggregateId);
    if (queue) queue.push(event);
    else queues.set(event.aggregateId, [event]);
  }
  const confirmed: number[] = [];
  for (let round = 0; ; round++) {
    const batch = [...queues.values()].flatMap((queue) =>
      round < queue.length ? [queue[round] as OutgoingEvent] : [],
    );
    if (batch.length === 0) return { confirmed };
    const results = await settleWithin(
      batch.map((event) => Promise.resolve().then(() => publisher.publish(event))),
      confirmTimeoutMs,
      "no publisher confirm",
    );
    let failure: unknown;
    results.forEach((result, index) => {
      const event = batch[index] as OutgoingEvent;
      if (result.status === "fulfilled") confirmed.push(event.seq);
      else failure ??= result.reason;
    });
    if (failure !== undefined) return { confirmed, failure };
  }
}
