import type pg from "pg";

/** What the database holds for a set of sessions, read after a scenario: the rows are the truth. */
export type SessionRows = {
  /** Reservations that still claim seats: PENDING and not past their time, or CONFIRMED. */
  live: number;
  confirmed: number;
  sales: number;
  /** Claims covering this instant, and the distinct seats they cover. */
  liveClaims: number;
  liveSeats: number;
  /** Seats claimed for good by a CONFIRMED reservation. */
  soldSeats: number;
};

export type Check = { name: string; ok: boolean; detail: string };

export async function readSessionRows(db: pg.Pool, sessionIds: string[]): Promise<SessionRows> {
  const { rows } = await db.query<SessionRows>(
    `SELECT
       (SELECT count(*)::int FROM reservations WHERE session_id = ANY($1::uuid[])
          AND (status = 'CONFIRMED' OR (status = 'PENDING' AND expires_at > now()))) AS "live",
       (SELECT count(*)::int FROM reservations WHERE session_id = ANY($1::uuid[]) AND status = 'CONFIRMED') AS "confirmed",
       (SELECT count(*)::int FROM sales WHERE session_id = ANY($1::uuid[])) AS "sales",
       (SELECT count(*)::int FROM reservation_seats WHERE session_id = ANY($1::uuid[]) AND upper(claim) > now()) AS "liveClaims",
       (SELECT count(DISTINCT seat_id)::int FROM reservation_seats
          WHERE session_id = ANY($1::uuid[]) AND upper(claim) > now()) AS "liveSeats",
       (SELECT count(*)::int FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
          WHERE rs.session_id = ANY($1::uuid[]) AND r.status = 'CONFIRMED' AND upper(rs.claim) = 'infinity') AS "soldSeats"`,
    [sessionIds],
  );
  return rows[0] as SessionRows;
}

export function check(name: string, actual: number, expected: number): Check {
  return {
    name,
    ok: actual === expected,
    detail: `${actual}${actual === expected ? "" : ` (expected ${expected})`}`,
  };
}

/** The checks every scenario makes: no seat in two live claims, every live hold has all its seats. */
export function claimChecks(rows: SessionRows, seatsPerHold: number): Check[] {
  return [
    check("seats in two live claims", rows.liveClaims - rows.liveSeats, 0),
    check("live claims = seats x live holds", rows.liveClaims, rows.live * seatsPerHold),
    check("sales = confirmed", rows.sales, rows.confirmed),
  ];
}

/** A counter of the service's /metrics text, summed over series whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (matches) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
