import pg from "pg";
import { closedLoop } from "./load.ts";

/**
 * The database ceilings: the least work a hold needs, written here and nowhere else, so that no
 * change to `src/` or `drizzle/` can move the bar the service is judged against. In a schema of
 * its own in the service's database: a reservation row and one claim row per seat, in a table
 * with the same kind of exclusion constraint as the service's claims. Sent by the same number of
 * callers over a pool of the service's size, with named (prepared) statements.
 *
 * - `single`: one hold per transaction, one statement (insert the reservation, insert its claims,
 *   commit). The targets are judged against this.
 * - `batched`: N holds per transaction, each in a subtransaction of its own, so that a conflict
 *   fails only its hold: what group commit can reach at most.
 */

const SCHEMA = `
  DROP SCHEMA IF EXISTS bench_ceiling CASCADE;
  CREATE SCHEMA bench_ceiling;
  CREATE EXTENSION IF NOT EXISTS btree_gist;
  CREATE TABLE bench_ceiling.reservations (
    id uuid PRIMARY KEY, user_id text NOT NULL, expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE bench_ceiling.claims (
    reservation_id uuid NOT NULL, seat_id uuid NOT NULL, claim tstzrange NOT NULL,
    EXCLUDE USING gist (seat_id WITH =, claim WITH &&));
  CREATE FUNCTION bench_ceiling.claim_many(p_ids uuid[], p_users text[], p_seats uuid[], p_per int, p_ttl int)
  RETURNS int LANGUAGE plpgsql AS $$
  DECLARE
    v_made int := 0;
  BEGIN
    FOR i IN 1..cardinality(p_ids) LOOP
      BEGIN
        INSERT INTO bench_ceiling.reservations (id, user_id, expires_at)
          VALUES (p_ids[i], p_users[i], now() + make_interval(secs => p_ttl));
        INSERT INTO bench_ceiling.claims (reservation_id, seat_id, claim)
          SELECT p_ids[i], seat, tstzrange(now(), now() + make_interval(secs => p_ttl))
          FROM unnest(p_seats[(i - 1) * p_per + 1 : i * p_per]) AS seat;
        v_made := v_made + 1;
      EXCEPTION WHEN exclusion_violation THEN
        NULL;
      END;
    END LOOP;
    RETURN v_made;
  END $$;
`;

const SINGLE = `
  WITH r AS (
    INSERT INTO bench_ceiling.reservations (id, user_id, expires_at)
    VALUES ($1, $2, now() + make_interval(secs => $4::int)) RETURNING id, expires_at)
  INSERT INTO bench_ceiling.claims (reservation_id, seat_id, claim)
  SELECT r.id, seat, tstzrange(now(), r.expires_at) FROM r, unnest($3::uuid[]) AS seat`;

export type CeilingRun = { claims: number; seconds: number; latencies: number[] };

export type CeilingOptions = {
  databaseUrl: string;
  poolSize: number;
  concurrency: number;
  /** Disjoint seat sets, one per claim; random uuids do (the table has no seats to refer to). */
  holds: number;
  seatsPerHold: number;
  ttlSeconds: number;
};

export async function prepareCeilings(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(SCHEMA);
  } finally {
    await client.end();
  }
}

/** Empties the ceiling's tables between runs, so each starts from the same state. */
export async function resetCeilings(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("TRUNCATE bench_ceiling.reservations, bench_ceiling.claims");
    await client.query("VACUUM (ANALYZE) bench_ceiling.reservations, bench_ceiling.claims");
  } finally {
    await client.end();
  }
}

function seatSets(count: number, perHold: number): string[][] {
  return Array.from({ length: count }, () =>
    Array.from({ length: perHold }, () => crypto.randomUUID()).sort(),
  );
}

/** (a) One hold per transaction: `concurrency` callers, each with one claim in flight. */
export async function singleClaimCeiling(options: CeilingOptions): Promise<CeilingRun> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  const latencies: number[] = [];
  let claims = 0;
  try {
    const { seconds } = await closedLoop(
      options.concurrency,
      seatSets(options.holds, options.seatsPerHold),
      async (seats, index) => {
        const started = performance.now();
        const result = await pool.query({
          name: "ceiling-single",
          text: SINGLE,
          values: [crypto.randomUUID(), `ceiling-${index}`, seats, options.ttlSeconds],
        });
        if (result.rowCount === seats.length) claims++;
        latencies.push(performance.now() - started);
      },
    );
    return { claims, seconds, latencies };
  } finally {
    await pool.end();
  }
}

/**
 * (b) `perTransaction` holds per transaction, each in its own subtransaction: the same
 * `concurrency` callers, grouped `perTransaction` at a time. A latency is its group's.
 */
export async function batchedClaimCeiling(
  options: CeilingOptions & { perTransaction: number },
): Promise<CeilingRun> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  const per = options.perTransaction;
  const groups = Array.from({ length: Math.ceil(options.holds / per) }, (_, i) =>
    seatSets(Math.min(per, options.holds - i * per), options.seatsPerHold),
  );
  const latencies: number[] = [];
  let claims = 0;
  try {
    const callers = Math.max(1, Math.floor(options.concurrency / per));
    const { seconds } = await closedLoop(callers, groups, async (group, index) => {
      const started = performance.now();
      const result = await pool.query<{ made: number }>({
        name: "ceiling-batched",
        text: "SELECT bench_ceiling.claim_many($1, $2, $3, $4, $5) AS made",
        values: [
          group.map(() => crypto.randomUUID()),
          group.map((_, i) => `ceiling-${index}-${i}`),
          group.flat(),
          options.seatsPerHold,
          options.ttlSeconds,
        ],
      });
      claims += result.rows[0]?.made ?? 0;
      const ms = performance.now() - started;
      for (const _ of group) latencies.push(ms);
    });
    return { claims, seconds, latencies };
  } finally {
    await pool.end();
  }
}
