import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { isoTime } from "../db/sql-helpers.ts";
import type { OutgoingEvent } from "./publisher.ts";
import type { EventEnvelope } from "./types.ts";

/** A claimed row, with how many unpublished rows of its aggregate come before it. */
export type ClaimedEvent = OutgoingEvent & { pendingBefore: number };

type ClaimedRow = {
  seq: number | string;
  id: string;
  type: EventEnvelope["type"];
  aggregate_id: string;
  payload: EventEnvelope["data"];
  occurred_at: string;
  pending_before: number;
};

/**
 * Locks up to `limit` unpublished rows in `seq` order, skipping rows another relay holds. Each row
 * comes with the number of unpublished rows of its aggregate before it, counted in the same
 * snapshot, so the caller can tell whether an earlier event of that reservation is missing from
 * its batch (see `keepReservationOrder`). Run it inside the transaction that marks them published.
 */
export async function claimPendingEvents(tx: Executor, limit: number): Promise<ClaimedEvent[]> {
  const rows = await queryRows<ClaimedRow>(
    tx,
    sql`
      WITH claimed AS (
        SELECT seq, id, type, aggregate_id, payload, occurred_at FROM outbox
        WHERE published_at IS NULL
        ORDER BY seq
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      )
      SELECT c.seq, c.id, c.type, c.aggregate_id, c.payload, ${isoTime(sql`c.occurred_at`)} AS occurred_at,
        (SELECT count(*) FROM outbox e
          WHERE e.aggregate_id = c.aggregate_id AND e.published_at IS NULL AND e.seq < c.seq)::int AS pending_before
      FROM claimed c
      ORDER BY c.seq`,
  );
  return rows.map((row) => ({
    seq: Number(row.seq),
    aggregateId: row.aggregate_id,
    pendingBefore: Number(row.pending_before),
    envelope: { id: row.id, type: row.type, occurredAt: row.occurred_at, data: row.payload },
  }));
}

export async function markPublished(tx: Executor, seqs: readonly number[]): Promise<void> {
  if (seqs.length === 0) return;
  await tx.execute(sql`UPDATE outbox SET published_at = now() WHERE seq = ANY(${sql.param(seqs)}::bigint[])`);
}

/** Deletes rows published longer than `retentionMs` ago, in batches; unpublished rows are never touched. */
export async function pruneOutbox(db: Executor, retentionMs: number, batchSize = 5_000): Promise<number> {
  let total = 0;
  for (;;) {
    const [row] = await queryRows<{ n: number }>(
      db,
      sql`WITH gone AS (
            DELETE FROM outbox WHERE seq IN (
              SELECT seq FROM outbox
              WHERE published_at < now() - make_interval(secs => ${retentionMs / 1000})
              LIMIT ${batchSize}
            )
            RETURNING 1
          ) SELECT count(*)::int AS n FROM gone`,
    );
    const deleted = Number(row?.n ?? 0);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

export type OutboxBacklog = {
  /** Events committed and not yet confirmed by the broker. */
  pending: number;
  /** Age in seconds of the oldest of them; 0 when none is pending. */
  lagSeconds: number;
};

/** The backlog the relays have to work through: for /metrics and /health. */
export async function readOutboxBacklog(db: Executor): Promise<OutboxBacklog> {
  const [row] = await queryRows<{ pending: number | string; lag_seconds: number | string | null }>(
    db,
    sql`SELECT count(*)::int AS pending,
          coalesce(extract(epoch FROM now() - min(occurred_at)), 0)::float8 AS lag_seconds
        FROM outbox WHERE published_at IS NULL`,
  );
  return { pending: Number(row?.pending ?? 0), lagSeconds: Math.max(0, Number(row?.lag_seconds ?? 0)) };
}

/** Seconds since any relay last marked an event published; undefined when none is kept. */
export async function secondsSinceLastPublish(db: Executor): Promise<number | undefined> {
  const [row] = await queryRows<{ seconds: number | string | null }>(
    db,
    sql`SELECT extract(epoch FROM now() - max(published_at))::float8 AS seconds
        FROM outbox WHERE published_at IS NOT NULL`,
  );
  return row?.seconds == null ? undefined : Math.max(0, Number(row.seconds));
}
