import { sql } from "drizzle-orm";
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

/** The LISTEN/NOTIFY channel relays listen on (events/outbox-listener-node.ts). */
export const OUTBOX_CHANNEL = "outbox_events";

const notifying = new WeakMap<object, { again: boolean }>();

/**
 * After a commit that wrote outbox rows: wakes the relays, in a statement of its own. Never inside
 * the writing transaction: one that has notified holds a database-wide lock from its commit until
 * its WAL is flushed, so writers would take turns at flushing instead of sharing flushes. Calls
 * are coalesced per database: one notification in flight at a time, and one more after it when
 * commits arrived meanwhile, so the last commit is always followed by a notification. Never
 * throws: relays also poll, so a lost notification only delays an event.
 */
export function notifyRelays(db: Executor): void {
  const pending = notifying.get(db);
  if (pending) {
    pending.again = true;
    return;
  }
  const state = { again: false };
  notifying.set(db, state);
  const send = (): void => {
    db.execute(sql`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`)
      .catch(() => undefined)
      .then(() => {
        if (!state.again) return notifying.delete(db);
        state.again = false;
        send();
      });
  };
  send();
}
