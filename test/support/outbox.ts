import { sql } from "drizzle-orm";
import { type Database, queryRows } from "../../src/db/database.ts";
import { appendEvents } from "../../src/events/outbox.ts";
import type { EventPublisher, OutgoingEvent } from "../../src/events/publisher.ts";
import type { DomainEvent } from "../../src/events/types.ts";

/** `count` numbered events of one made-up reservation, written in one transaction as the services do. */
export async function appendNumberedEvents(db: Database, aggregateId: string, count: number, from = 0) {
  const events: DomainEvent[] = Array.from({ length: count }, (_, index) => ({
    type: "seat.released",
    data: { seatId: `n${from + index}`, sessionId: "s", reservationId: aggregateId, reason: "expired" },
  }));
  await db.transaction((tx) => appendEvents(tx, aggregateId, events));
}

/** The number an event of `appendNumberedEvents` carries. */
export function eventNumber(event: { data: unknown }): number {
  return Number((event.data as { seatId: string }).seatId.slice(1));
}

export type OutboxRow = {
  seq: number;
  id: string;
  type: string;
  aggregate_id: string;
  payload: Record<string, unknown>;
  occurred_at: string;
  published: boolean;
};

export async function outboxRows(db: Database): Promise<OutboxRow[]> {
  const rows = await queryRows<OutboxRow>(
    db,
    sql`SELECT seq, id, type, aggregate_id, payload,
          to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at,
          published_at IS NOT NULL AS published
        FROM outbox ORDER BY seq`,
  );
  return rows.map((row) => ({ ...row, seq: Number(row.seq) }));
}

/**
 * An in-memory broker: records what it confirmed, in order. `fail` decides per event whether the
 * broker refuses it; `gate`, when set, holds every publish until it resolves.
 */
export function createRecordingPublisher(
  options: {
    fail?: (event: OutgoingEvent) => boolean;
    gate?: () => Promise<void>;
    down?: () => boolean;
  } = {},
) {
  const confirmed: OutgoingEvent[] = [];
  let readyCalls = 0;
  const publisher: EventPublisher = {
    async ready() {
      readyCalls += 1;
      if (options.down?.()) throw new Error("connect ECONNREFUSED");
    },
    async publish(event) {
      await options.gate?.();
      if (options.fail?.(event)) throw new Error(`nack ${event.envelope.id}`);
      confirmed.push(event);
    },
    isConnected: () => !options.down?.(),
    reset: async () => {},
    close: async () => {},
  };
  return { publisher, confirmed, readyCalls: () => readyCalls };
}

/** Resolves once `predicate` holds, polling; fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
