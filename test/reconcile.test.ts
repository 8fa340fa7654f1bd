import { execFile } from "node:child_process";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createJwtVerifier } from "../src/auth/jwt-verifier.ts";
import { type ReconcileReport, reconcile } from "../src/booking/reconcile.ts";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, createTestApp, hold, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";
import { freePort } from "./support/server-process.ts";
import { bearer, signHs256 } from "./support/tokens.ts";

type Db = Parameters<typeof reconcile>[0];
const counts = (report: ReconcileReport) =>
  Object.fromEntries(report.checks.map((check) => [check.name, check.count]));
const samplesOf = (report: ReconcileReport, name: string) =>
  report.checks.find((check) => check.name === name)?.samples ?? [];

/**
 * Each breach is written behind the app's back, straight into the rows, and must show up in its
 * check and no other; it is then repaired, so every test starts from rows that reconcile clean.
 */
describe.each(availableDrivers())("reconciliation on %s", (driver) => {
  const suite = useTestApp(driver);
  let seatIds: string[];
  let next = 0;
  const seat = () => seatIds[next++] as string;
  const exec = (query: ReturnType<typeof sql>) => suite.database.db.execute(query);

  beforeAll(async () => {
    ({ seatIds } = await createSessionVia(suite.app, { rowsCount: 4, seatsPerRow: 10 }));
    // Rows as the app leaves them: a live hold, a sale, a cancellation.
    await hold(suite.app, "ann", [seat()]);
    const paid = await hold(suite.app, "bob", [seat(), seat()]);
    await call(suite.app, "POST", `/reservations/${paid.body.id}/pay`, {});
    const cancelled = await hold(suite.app, "cid", [seat()]);
    await call(suite.app, "POST", `/reservations/${cancelled.body.id}/cancel`, {});
  });

  /** Writes a breach, checks that exactly `expected` moved (by one row each), then repairs it. */
  const breach = async (
    expected: Record<string, number>,
    write: () => Promise<{ id: string; repair: () => Promise<unknown> }>,
  ) => {
    const before = await reconcile(suite.database.db as Db);
    expect(before.ok).toBe(true);
    const { id, repair } = await write();
    try {
      const after = await reconcile(suite.database.db as Db);
      expect(after.ok).toBe(false);
      const moved = Object.fromEntries(
        Object.entries(counts(after))
          .filter(([name, count]) => count !== counts(before)[name])
          .map(([name, count]) => [name, count - (counts(before)[name] ?? 0)]),
      );
      expect(moved).toEqual(expected);
      for (const name of Object.keys(expected)) expect(JSON.stringify(samplesOf(after, name))).toContain(id);
    } finally {
      await repair();
    }
    expect((await reconcile(suite.database.db as Db)).ok).toBe(true);
  };

  const paidHold = async () => {
    const held = await hold(suite.app, "payer", [seat()]);
    expect((await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, {})).status).toBe(200);
    return held.body.id as string;
  };
  const liveHold = async () => {
    const held = await hold(suite.app, "holder", [seat()]);
    expect(held.status).toBe(201);
    return { id: held.body.id as string, seatId: held.body.seatIds[0] as string };
  };

  it("finds nothing wrong in rows the app wrote", async () => {
    const report = await reconcile(suite.database.db as Db);
    expect(report.ok).toBe(true);
    expect(report.checks.map((check) => check.name)).toEqual([
      "double_claims",
      "sales_without_confirmed_reservation",
      "confirmed_reservations_without_sale",
      "sold_seats_without_sale",
      "sold_seats_released",
      "claims_past_reservation_end",
      "stale_outbox_events",
      "stale_pending_reservations",
    ]);
  });

  it("a seat in two live claims, with the exclusion constraint gone", async () => {
    const first = await liveHold();
    await breach({ double_claims: 1 }, async () => {
      await exec(sql`ALTER TABLE reservation_seats DROP CONSTRAINT reservation_seats_no_overlapping_claims`);
      await exec(sql`
        WITH r AS (
          INSERT INTO reservations (session_id, user_id, total_cents, expires_at)
          SELECT session_id, 'sneaky', 0, now() + interval '30 seconds' FROM seats WHERE id = ${first.seatId}::uuid
          RETURNING id, session_id, expires_at)
        INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
        SELECT r.id, ${first.seatId}::uuid, r.session_id, tstzrange(now(), r.expires_at) FROM r`);
      return {
        id: first.seatId,
        repair: async () => {
          await exec(sql`DELETE FROM reservations WHERE user_id = 'sneaky'`);
          await exec(sql`ALTER TABLE reservation_seats ADD CONSTRAINT reservation_seats_no_overlapping_claims
                         EXCLUDE USING gist (seat_id WITH =, claim WITH &&)`);
        },
      };
    });
  });

  it("a seat held twice because a live hold's claim was cut short", async () => {
    const first = await liveHold();
    await breach({ double_claims: 1 }, async () => {
      await exec(sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim) - interval '1 minute', lower(claim))
                     WHERE reservation_id = ${first.id}::uuid`);
      const second = await hold(suite.app, "second", [first.seatId]);
      expect(second.status).toBe(201);
      return {
        id: first.seatId,
        repair: () => exec(sql`UPDATE reservations SET status = 'CANCELLED' WHERE id = ${first.id}::uuid`),
      };
    });
  });

  it("a sale whose reservation is not CONFIRMED", async () => {
    const { id } = await liveHold();
    await call(suite.app, "POST", `/reservations/${id}/cancel`, {});
    // Its seat is free again (the hold was cancelled), so the sale is also one of released seats.
    await breach({ sales_without_confirmed_reservation: 1, sold_seats_released: 1 }, async () => {
      await exec(sql`INSERT INTO sales (reservation_id, user_id, session_id, amount_cents)
                     SELECT id, user_id, session_id, total_cents FROM reservations WHERE id = ${id}::uuid`);
      return { id, repair: () => exec(sql`DELETE FROM sales WHERE reservation_id = ${id}::uuid`) };
    });
  });

  it("a CONFIRMED reservation without a sale", async () => {
    const { id } = await liveHold();
    await breach({ confirmed_reservations_without_sale: 1 }, async () => {
      await exec(sql`UPDATE reservations SET status = 'CONFIRMED' WHERE id = ${id}::uuid`);
      return {
        id,
        repair: () => exec(sql`UPDATE reservations SET status = 'PENDING' WHERE id = ${id}::uuid`),
      };
    });
  });

  it("a sold seat whose sale is gone", async () => {
    const id = await paidHold();
    await breach({ confirmed_reservations_without_sale: 1, sold_seats_without_sale: 1 }, async () => {
      const [sale] = await queryRows<Record<string, unknown>>(
        suite.database.db,
        sql`DELETE FROM sales WHERE reservation_id = ${id}::uuid RETURNING *`,
      );
      return {
        id,
        repair: () =>
          exec(sql`INSERT INTO sales (id, reservation_id, user_id, session_id, amount_cents, paid_at)
                   VALUES (${sale?.id}::uuid, ${id}::uuid, ${sale?.user_id}, ${sale?.session_id}::uuid,
                           ${sale?.amount_cents}, now())`),
      };
    });
  });

  it("a sold seat released again", async () => {
    const id = await paidHold();
    await breach({ sold_seats_released: 1 }, async () => {
      await exec(
        sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim), now()) WHERE reservation_id = ${id}::uuid`,
      );
      return {
        id,
        repair: () =>
          exec(
            sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity') WHERE reservation_id = ${id}::uuid`,
          ),
      };
    });
  });

  it("a hold's claim reaching past its expiry", async () => {
    const { id } = await liveHold();
    await breach({ claims_past_reservation_end: 1 }, async () => {
      await exec(sql`UPDATE reservation_seats rs SET claim = tstzrange(lower(rs.claim), r.expires_at + interval '1 millisecond')
                     FROM reservations r WHERE r.id = rs.reservation_id AND r.id = ${id}::uuid`);
      return {
        id,
        repair: () =>
          exec(sql`UPDATE reservation_seats rs SET claim = tstzrange(lower(rs.claim), r.expires_at)
                   FROM reservations r WHERE r.id = rs.reservation_id AND r.id = ${id}::uuid`),
      };
    });
  });

  it("an unpaid hold claiming its seat for good", async () => {
    const { id } = await liveHold();
    await breach({ sold_seats_without_sale: 1, claims_past_reservation_end: 1 }, async () => {
      await exec(
        sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity') WHERE reservation_id = ${id}::uuid`,
      );
      return { id, repair: () => exec(sql`DELETE FROM reservations WHERE id = ${id}::uuid`) };
    });
  });

  it("an outbox event unpublished past the threshold", async () => {
    await breach({ stale_outbox_events: 1 }, async () => {
      const [event] = await queryRows<{ id: string }>(
        suite.database.db,
        sql`INSERT INTO outbox (type, aggregate_id, payload, occurred_at)
            VALUES ('reservation.created', gen_random_uuid(), '{}'::jsonb, now() - interval '10 minutes')
            RETURNING id::text AS id`,
      );
      const id = event?.id as string;
      return { id, repair: () => exec(sql`UPDATE outbox SET published_at = now() WHERE id = ${id}::uuid`) };
    });
  });

  it("a hold PENDING long past its expiry", async () => {
    const { id } = await liveHold();
    await breach({ stale_pending_reservations: 1 }, async () => {
      await exec(sql`UPDATE reservation_seats SET claim = tstzrange(now() - interval '20 minutes', now() - interval '10 minutes')
                     WHERE reservation_id = ${id}::uuid`);
      await exec(
        sql`UPDATE reservations SET expires_at = now() - interval '10 minutes' WHERE id = ${id}::uuid`,
      );
      return {
        id,
        repair: () => exec(sql`UPDATE reservations SET status = 'EXPIRED' WHERE id = ${id}::uuid`),
      };
    });
  });

  it("thresholds are the caller's", async () => {
    const { id } = await liveHold();
    await exec(sql`UPDATE reservation_seats SET claim = tstzrange(now() - interval '20 minutes', now() - interval '1 minute')
                   WHERE reservation_id = ${id}::uuid`);
    await exec(sql`UPDATE reservations SET expires_at = now() - interval '1 minute' WHERE id = ${id}::uuid`);
    expect((await reconcile(suite.database.db as Db)).ok).toBe(true);
    const strict = await reconcile(suite.database.db as Db, { pendingGraceSeconds: 30 });
    expect(counts(strict).stale_pending_reservations).toBe(1);
    await exec(sql`UPDATE reservations SET status = 'EXPIRED' WHERE id = ${id}::uuid`);
  });
});

const SECRET = "a-reconcile-test-secret-of-32-characters";

describe.each(availableDrivers())("GET /admin/reconcile on %s", (driver) => {
  const suite = useTestApp(driver);

  it("answers the report in open mode", async () => {
    const answer = await call(suite.app, "GET", "/admin/reconcile?pendingGraceSeconds=60");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(answer.body).toMatchObject({ ok: true, options: { pendingGraceSeconds: 60 } });
    expect(answer.body.checks).toHaveLength(8);
  });

  it("reports a breach with ok false", async () => {
    await suite.database.db.execute(sql`
      INSERT INTO outbox (type, aggregate_id, payload, occurred_at)
      VALUES ('reservation.created', gen_random_uuid(), '{}'::jsonb, now() - interval '1 hour')`);
    const answer = await call(suite.app, "GET", "/admin/reconcile");
    expect(answer.status).toBe(200);
    expect(answer.body.ok).toBe(false);
    await suite.database.db.execute(sql`UPDATE outbox SET published_at = now()`);
  });

  it("refuses a bad threshold", async () => {
    const answer = await call(suite.app, "GET", "/admin/reconcile?outboxMaxAgeSeconds=-1");
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("VALIDATION_FAILED");
  });

  it("with auth on, answers organisers only", async () => {
    const verifier = createJwtVerifier({ secret: SECRET, rolesClaim: "roles", clockSkewSeconds: 30 });
    const app = createTestApp(suite.database.db, { auth: verifier });
    expect((await call(app, "GET", "/admin/reconcile")).status).toBe(401);
    const buyer = await signHs256(SECRET, { sub: "buyer-1" });
    expect((await call(app, "GET", "/admin/reconcile", undefined, bearer(buyer))).status).toBe(403);
    const organiser = await signHs256(SECRET, { sub: "boss", roles: ["organizer"] });
    const answer = await call(app, "GET", "/admin/reconcile", undefined, bearer(organiser));
    expect(answer.status).toBe(200);
    expect(answer.body.ok).toBe(true);
  });
});

const onPostgres = availableDrivers().includes("postgres") ? describe : describe.skip;

onPostgres("npm run reconcile", () => {
  const suite = useTestApp("postgres");

  const run = (env: Record<string, string>, ...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["dist/reconcile.js", ...args],
        { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 20_000 },
        (error, stdout, stderr) => {
          const code = error ? ((error as { code?: number }).code ?? 1) : 0;
          resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
        },
      );
    });

  it("exits 0 when every check holds, 1 on a breach naming it, and prints JSON with --json", async () => {
    const url = suite.database.url as string;
    await createSessionVia(suite.app);
    const clean = await run({ DATABASE_URL: url });
    expect(clean.stderr).toBe("");
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain("every check holds");

    const [event] = await queryRows<{ id: string }>(
      suite.database.db,
      sql`INSERT INTO outbox (type, aggregate_id, payload, occurred_at)
          VALUES ('seat.released', gen_random_uuid(), '{}'::jsonb, now() - interval '2 minutes')
          RETURNING id::text AS id`,
    );
    expect((await run({ DATABASE_URL: url })).code).toBe(0);
    const breached = await run({ DATABASE_URL: url }, "--outbox-max-age", "60");
    expect(breached.code).toBe(1);
    expect(breached.stdout).toMatch(/FAIL\s+stale_outbox_events \(1\)/);
    expect(breached.stdout).toContain(event?.id);

    const json = await run({ DATABASE_URL: url }, "--json", "--outbox-max-age=60");
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as ReconcileReport;
    expect(report.ok).toBe(false);
    expect(counts(report).stale_outbox_events).toBe(1);
  }, 90_000);

  it("exits 2 with one line when it cannot check", async () => {
    const port = await freePort();
    const unreachable = await run({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere` });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
    expect(unreachable.stderr).toContain("reconcile: cannot read");

    const unset = await run({});
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain("DATABASE_URL");

    const badFlag = await run({ DATABASE_URL: suite.database.url as string }, "--samples", "0");
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("--samples");
  }, 90_000);
});
