import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryRows } from "../db/database.ts";
import { isoTime } from "../db/sql-helpers.ts";

/**
 * Reconciliation: reads the rows and reports every way they break the service's promises, whatever
 * wrote them. The database constraints make most of these impossible; this looks anyway, because
 * a constraint can be dropped, a migration can be wrong and an operator can edit rows by hand.
 */

export type ReconcileOptions = {
  /** An unpublished outbox event older than this is a breach (the relay is stuck or absent). */
  outboxMaxAgeSeconds: number;
  /** A hold still PENDING this long after its expiry is a breach (no sweeper or callback ran). */
  pendingGraceSeconds: number;
  /** How many offending rows each check shows; the count is always the full one. */
  sampleSize: number;
};

export const RECONCILE_DEFAULTS: ReconcileOptions = {
  outboxMaxAgeSeconds: 300,
  pendingGraceSeconds: 300,
  sampleSize: 20,
};

export type ReconcileCheck = {
  name: CheckName;
  description: string;
  /** Offending rows; 0 when the check holds. */
  count: number;
  samples: Record<string, unknown>[];
};

export type ReconcileReport = {
  ok: boolean;
  /** The database's clock at the snapshot every check read. */
  checkedAt: string;
  options: ReconcileOptions;
  checks: ReconcileCheck[];
};

type CheckName =
  | "double_claims"
  | "sales_without_confirmed_reservation"
  | "confirmed_reservations_without_sale"
  | "sold_seats_without_sale"
  | "sold_seats_released"
  | "claims_past_reservation_end"
  | "stale_outbox_events"
  | "stale_pending_reservations";

type Check = { name: CheckName; description: string; rows: SQL };

/** A claim that never ends: a sale's claim reaches 'infinity' (a value); an unbounded range counts too. */
const endless = sql`(upper_inf(rs.claim) OR upper(rs.claim) = 'infinity')`;

/**
 * A claim is live while its range reaches past now, or while its reservation says it should be
 * (PENDING and not due, or CONFIRMED): the first is what the exclusion constraint sees, the second
 * what buyers were told. A seat with two live claims by either reading is sold or held twice.
 */
function checks(options: ReconcileOptions): Check[] {
  return [
    {
      name: "double_claims",
      description: "seats in more than one live claim",
      rows: sql`
        SELECT rs.seat_id::text AS "seatId", rs.session_id::text AS "sessionId", st.label,
          array_agg(rs.reservation_id::text ORDER BY rs.reservation_id) AS "reservationIds"
        FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        LEFT JOIN seats st ON st.id = rs.seat_id
        WHERE upper(rs.claim) > now() OR ${endless}
          OR r.status = 'CONFIRMED' OR (r.status = 'PENDING' AND r.expires_at > now())
        GROUP BY rs.seat_id, rs.session_id, st.label
        HAVING count(*) > 1`,
    },
    {
      name: "sales_without_confirmed_reservation",
      description: "sales whose reservation is missing or not CONFIRMED",
      rows: sql`
        SELECT sa.id::text AS "saleId", sa.reservation_id::text AS "reservationId", r.status
        FROM sales sa LEFT JOIN reservations r ON r.id = sa.reservation_id
        WHERE r.id IS NULL OR r.status <> 'CONFIRMED'`,
    },
    {
      name: "confirmed_reservations_without_sale",
      description: "CONFIRMED reservations with no sale",
      rows: sql`
        SELECT r.id::text AS "reservationId", r.session_id::text AS "sessionId", r.user_id AS "userId"
        FROM reservations r
        WHERE r.status = 'CONFIRMED' AND NOT EXISTS (SELECT 1 FROM sales sa WHERE sa.reservation_id = r.id)`,
    },
    {
      name: "sold_seats_without_sale",
      description: "seats claimed for good (sold) by a reservation that has no sale",
      rows: sql`
        SELECT rs.seat_id::text AS "seatId", rs.reservation_id::text AS "reservationId", r.status
        FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
        WHERE ${endless}
          AND NOT EXISTS (SELECT 1 FROM sales sa WHERE sa.reservation_id = rs.reservation_id)`,
    },
    {
      name: "sold_seats_released",
      description: "seats of a sale whose claim ends, so the seat can be sold again",
      rows: sql`
        SELECT rs.seat_id::text AS "seatId", rs.reservation_id::text AS "reservationId",
          ${isoTime(sql`upper(rs.claim)`)} AS "claimEnds"
        FROM reservation_seats rs JOIN sales sa ON sa.reservation_id = rs.reservation_id
        WHERE NOT ${endless}`,
    },
    {
      name: "claims_past_reservation_end",
      description: "claims of an unpaid reservation reaching past its expiresAt",
      rows: sql`
        SELECT rs.seat_id::text AS "seatId", rs.reservation_id::text AS "reservationId", r.status,
          ${isoTime(sql`r.expires_at`)} AS "expiresAt",
          CASE WHEN ${endless} THEN 'infinity' ELSE ${isoTime(sql`upper(rs.claim)`)} END AS "claimEnds"
        FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status <> 'CONFIRMED' AND (${endless} OR upper(rs.claim) > r.expires_at)`,
    },
    {
      name: "stale_outbox_events",
      description: `outbox events unpublished for more than ${options.outboxMaxAgeSeconds} s`,
      rows: sql`
        SELECT o.seq::text AS seq, o.id::text AS "eventId", o.type, ${isoTime(sql`o.occurred_at`)} AS "occurredAt"
        FROM outbox o
        WHERE o.published_at IS NULL
          AND o.occurred_at < now() - make_interval(secs => ${options.outboxMaxAgeSeconds})
        ORDER BY o.seq`,
    },
    {
      name: "stale_pending_reservations",
      description: `holds still PENDING more than ${options.pendingGraceSeconds} s after their expiry`,
      rows: sql`
        SELECT r.id::text AS "reservationId", ${isoTime(sql`r.expires_at`)} AS "expiresAt"
        FROM reservations r
        WHERE r.status = 'PENDING' AND r.expires_at < now() - make_interval(secs => ${options.pendingGraceSeconds})
        ORDER BY r.expires_at`,
    },
  ];
}

/**
 * Runs every check on one read-only snapshot, so a payment committing halfway through cannot show
 * up as a sale without its reservation. Throws when the database cannot be read.
 */
export async function reconcile(
  db: Executor,
  overrides: Partial<ReconcileOptions> = {},
): Promise<ReconcileReport> {
  const options = { ...RECONCILE_DEFAULTS, ...overrides };
  return db.transaction(
    async (tx) => {
      const [clock] = await queryRows<{ now: string }>(tx, sql`SELECT ${isoTime(sql`now()`)} AS now`);
      const results: ReconcileCheck[] = [];
      // One at a time: some drivers lose a transaction to parallel queries.
      for (const check of checks(options)) {
        const rows = await queryRows<{ total: number; sample: Record<string, unknown> }>(
          tx,
          sql`
            SELECT count(*) OVER ()::int AS total, to_json(found) AS sample
            FROM (${check.rows}) AS found
            LIMIT ${options.sampleSize}`,
        );
        results.push({
          name: check.name,
          description: check.description,
          count: rows[0]?.total ?? 0,
          samples: rows.map((row) => row.sample),
        });
      }
      return {
        ok: results.every((result) => result.count === 0),
        checkedAt: clock?.now ?? new Date().toISOString(),
        options,
        checks: results,
      };
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}
