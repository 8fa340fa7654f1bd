import { sql } from "drizzle-orm";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { waitingClaims } from "../src/booking/claim-batch.ts";
import { waitingPayments } from "../src/booking/pay-batch.ts";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, hold, type TestApp, useTestApp } from "./support/app.ts";
import { availableDrivers, type TestDatabase } from "./support/database.ts";

/**
 * Group commit driven for real on PostgreSQL. Batches are built deterministically: a claim of
 * another connection, left uncommitted on one seat, makes a batch that wants that seat wait on
 * the exclusion constraint, and the holds that arrive meanwhile queue for the next batch (one
 * batch in flight at a time in this suite). Holds of one batch share a transaction, so their
 * reservations share `created_at` (the transaction's start): the rows show who went together.
 */

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** An uncommitted claim on `seatId` in a connection of its own; `end()` rolls it back. */
async function blockSeat(database: TestDatabase, sessionId: string, seatId: string) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query("BEGIN");
  await client.query(
    `WITH r AS (INSERT INTO reservations (session_id, user_id, total_cents, expires_at)
       VALUES ($1, 'blocker', 0, now() + interval '1 minute') RETURNING id, expires_at)
     INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
     SELECT r.id, $2, $1, tstzrange(now(), r.expires_at) FROM r`,
    [sessionId, seatId],
  );
  return {
    end: async () => {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** The backend of a claim statement waiting on a lock, once there is one. */
async function waitingClaimBackend(database: TestDatabase): Promise<number> {
  let pid: number | undefined;
  await until(async () => {
    const rows = await queryRows<{ pid: number }>(
      database.db,
      sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
            AND wait_event_type = 'Lock' AND query LIKE '%claim_holds(%' AND pid <> pg_backend_pid()`,
    );
    pid = rows[0]?.pid;
    return pid !== undefined;
  }, "a claim statement waits on a lock");
  return pid as number;
}

type HoldRow = { user_id: string; created_at: string; seats: number };

async function holdRows(database: TestDatabase, sessionId: string): Promise<HoldRow[]> {
  return queryRows<HoldRow>(
    database.db,
    sql`SELECT r.user_id, r.created_at::text AS created_at,
          (SELECT count(*)::int FROM reservation_seats rs WHERE rs.reservation_id = r.id) AS seats
        FROM reservations r WHERE r.session_id = ${sessionId}::uuid AND r.user_id <> 'blocker'
        ORDER BY r.user_id`,
  );
}

async function createdEvents(database: TestDatabase, sessionId: string): Promise<string[]> {
  const rows = await queryRows<{ user_id: string }>(
    database.db,
    sql`SELECT payload->>'userId' AS user_id FROM outbox
        WHERE type = 'reservation.created' AND payload->>'sessionId' = ${sessionId} ORDER BY 1`,
  );
  return rows.map((row) => row.user_id);
}

const onPostgres = availableDrivers().includes("postgres") ? describe : describe.skip;

onPostgres("group commit on PostgreSQL", () => {
  const suite = useTestApp("postgres", { poolSize: 10, overrides: { claimBatch: { maxInFlight: 1 } } });
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Each reservation's user and the (sub)transaction that wrote it. */
  async function madeBy(sessionId: string): Promise<Map<string, string>> {
    const rows = await queryRows<{ user_id: string; xmin: string }>(
      suite.database.db,
      sql`SELECT user_id, xmin::text AS xmin FROM reservations WHERE session_id = ${sessionId}::uuid`,
    );
    return new Map(rows.map((row) => [row.user_id, row.xmin]));
  }

  /** Holds `first` (stuck behind a blocker on its seat), then queues `next` behind it. */
  async function behindAStuckBatch(app: TestApp, sessionId: string, stuckSeat: string) {
    const blocker = await blockSeat(suite.database, sessionId, stuckSeat);
    cleanups.push(blocker.end);
    const first = hold(app, "first", [stuckSeat]);
    await waitingClaimBackend(suite.database);
    return { first, release: blocker.end };
  }

  it("claims the holds that arrived during a claim together, in one transaction", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const { first, release } = await behindAStuckBatch(suite.app, session.id, seatIds[0] as string);
    const queued = Array.from({ length: 30 }, (_, i) =>
      hold(suite.app, `buyer-${String(i).padStart(2, "0")}`, [seatIds[1 + i] as string]),
    );
    await until(() => waitingClaims(suite.database.db) === 30, "30 holds queue");
    await release();

    expect((await first).status).toBe(201);
    const answers = await Promise.all(queued);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201));
    const rows = await holdRows(suite.database, session.id);
    expect(rows).toHaveLength(31);
    const batched = rows.filter((row) => row.user_id.startsWith("buyer-"));
    expect(new Set(batched.map((row) => row.created_at)).size).toBe(1);
    expect(batched[0]?.created_at).not.toBe(rows.find((row) => row.user_id === "first")?.created_at);
    expect(batched.every((row) => row.seats === 1)).toBe(true);
    // With no hold in the way of another, the batch was made set-wise, in one subtransaction.
    const made = await madeBy(session.id);
    expect(new Set(batched.map((row) => made.get(row.user_id))).size).toBe(1);
    expect(await createdEvents(suite.database, session.id)).toEqual(rows.map((row) => row.user_id).sort());
    // Each answer carries its own hold, built by the service, times from the database.
    for (const [i, answer] of answers.entries()) {
      expect(answer.body).toMatchObject({
        userId: `buyer-${String(i).padStart(2, "0")}`,
        status: "PENDING",
        seatIds: [seatIds[1 + i]],
        totalPrice: 12.5,
        sale: null,
      });
      const shown = await call(suite.app, "GET", `/reservations/${answer.body.id}`);
      expect(shown.body).toEqual(answer.body);
    }
  });

  it("two holds of one batch that want the same seat: exactly one wins; the rest of the batch commits", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuck, a, shared, b, alone] = seatIds as [string, string, string, string, string];
    const { first, release } = await behindAStuckBatch(suite.app, session.id, stuck);
    const left = hold(suite.app, "left", [a, shared]);
    const right = hold(suite.app, "right", [shared, b]);
    const other = hold(suite.app, "other", [alone]);
    await until(() => waitingClaims(suite.database.db) === 3, "3 holds queue");
    await release();

    expect((await first).status).toBe(201);
    const [l, r, o] = await Promise.all([left, right, other]);
    expect([l.status, r.status].sort()).toEqual([201, 409]);
    const loser = l.status === 409 ? l : r;
    expect(loser.body).toMatchObject({ code: "SEAT_UNAVAILABLE", seatIds: [shared] });
    expect(o.status).toBe(201);

    const rows = await holdRows(suite.database, session.id);
    const winner = l.status === 201 ? "left" : "right";
    expect(rows.map((row) => row.user_id)).toEqual(["first", winner, "other"].sort());
    expect(rows.find((row) => row.user_id === winner)?.seats).toBe(2);
    expect(rows.find((row) => row.user_id === winner)?.created_at).toBe(
      rows.find((row) => row.user_id === "other")?.created_at,
    );
    const claims = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM reservation_seats WHERE seat_id = ${shared}::uuid`,
    );
    expect(claims[0]?.n).toBe(1);
    // The loser left nothing behind: no event, no idempotency key.
    expect(await createdEvents(suite.database, session.id)).toEqual(["first", winner, "other"].sort());
    // The batch could not be made set-wise: each hold went in a subtransaction of its own.
    const made = await madeBy(session.id);
    expect(made.get(winner)).not.toBe(made.get("other"));
  });

  it("a hold whose seat another claimant has try-locked fails alone; its batch commits", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuck, locked, free] = seatIds as [string, string, string];
    const locker = new pg.Client({ connectionString: suite.database.url });
    await locker.connect();
    await locker.query("BEGIN");
    await locker.query("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))", [locked]);
    cleanups.push(async () => {
      await locker.query("ROLLBACK").catch(() => undefined);
      await locker.end();
    });
    const { first, release } = await behindAStuckBatch(suite.app, session.id, stuck);
    const refused = hold(suite.app, "refused", [free, locked]);
    const fine = hold(suite.app, "fine", [seatIds[3] as string]);
    await until(() => waitingClaims(suite.database.db) === 2, "2 holds queue");
    await release();

    expect((await first).status).toBe(201);
    const [no, yes] = await Promise.all([refused, fine]);
    expect(no.status).toBe(409);
    expect(no.body).toMatchObject({ code: "SEAT_UNAVAILABLE", seatIds: [locked] });
    expect(yes.status).toBe(201);
    expect((await holdRows(suite.database, session.id)).map((row) => row.user_id)).toEqual(["fine", "first"]);
    // The refused hold's try-lock on its first seat went with its subtransaction: the seat is free.
    expect((await hold(suite.app, "next", [free])).status).toBe(201);
  });

  it("idempotency keys are kept per hold of a batch: a replay and a new key together, the new key twice", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuck, s1, s3] = seatIds as [string, string, string];
    const earlier = await hold(suite.app, "keyed", [s1], { "idempotency-key": "k-1" });
    expect(earlier.status).toBe(201);
    const { first, release } = await behindAStuckBatch(suite.app, session.id, stuck);
    const replay = hold(suite.app, "keyed", [s1], { "idempotency-key": "k-1" });
    const fresh = hold(suite.app, "keyed", [s3], { "idempotency-key": "k-2" });
    const twin = hold(suite.app, "keyed", [s3], { "idempotency-key": "k-2" });
    await until(() => waitingClaims(suite.database.db) === 3, "the keyed holds queue");
    await release();
    expect((await first).status).toBe(201);

    const [replayed, made, twinned] = await Promise.all([replay, fresh, twin]);
    expect(replayed.status).toBe(201);
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.body).toEqual(earlier.body);
    // The same key twice in one batch: one makes the hold, the other is told the key is in use,
    // never a second hold. Which one is the order their fingerprints (async digests) came back in.
    const [won, lost] = made.status === 201 ? [made, twinned] : [twinned, made];
    expect(won.status).toBe(201);
    expect(lost.status).toBe(409);
    expect(lost.body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    const again = await hold(suite.app, "keyed", [s3], { "idempotency-key": "k-2" });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(won.body);
    expect((await holdRows(suite.database, session.id)).map((row) => row.user_id)).toEqual([
      "first",
      "keyed",
      "keyed",
    ]);
  });

  it("a batch whose connection dies answers every hold of it 503, writes none, and the next batch works", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuck, dying, ...rest] = seatIds as string[];
    const second = await blockSeat(suite.database, session.id, dying as string);
    cleanups.push(second.end);
    const { first, release } = await behindAStuckBatch(suite.app, session.id, stuck as string);
    const lead = hold(suite.app, "doomed-0", [dying as string]);
    await until(() => waitingClaims(suite.database.db) === 1, "the lead hold queues");
    const doomed = [
      lead,
      ...Array.from({ length: 9 }, (_, i) => hold(suite.app, `doomed-${i + 1}`, [rest[i] as string])),
    ];
    await until(() => waitingClaims(suite.database.db) === 10, "10 holds queue");
    await release();
    expect((await first).status).toBe(201);
    // The batch of ten now waits on the second blocker: its connection is cut there.
    const pid = await waitingClaimBackend(suite.database);
    await queryRows(suite.database.db, sql`SELECT pg_terminate_backend(${pid}::int)`);

    const answers = await Promise.all(doomed);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 503));
    expect(answers.every((answer) => answer.body.code === "SERVICE_UNAVAILABLE")).toBe(true);
    await second.end();
    expect((await holdRows(suite.database, session.id)).map((row) => row.user_id)).toEqual(["first"]);
    expect(await createdEvents(suite.database, session.id)).toEqual(["first"]);

    const retried = await Promise.all(
      [dying, ...rest.slice(0, 9)].map((seat, i) => hold(suite.app, `retry-${i}`, [seat as string])),
    );
    expect(retried.map((answer) => answer.status)).toEqual(retried.map(() => 201));
  });
});

/** A row lock on reservation `id`, taken in a connection of its own; `end()` rolls it back. */
async function lockReservation(database: TestDatabase, id: string) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE", [id]);
  return {
    end: async () => {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** The backend of a payment statement waiting on a lock, once there is one. */
async function waitingPaymentBackend(database: TestDatabase): Promise<number> {
  let pid: number | undefined;
  await until(async () => {
    const rows = await queryRows<{ pid: number }>(
      database.db,
      sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
            AND wait_event_type = 'Lock' AND query LIKE '%pay_holds(%' AND pid <> pg_backend_pid()`,
    );
    pid = rows[0]?.pid;
    return pid !== undefined;
  }, "a payment statement waits on a lock");
  return pid as number;
}

type PaymentRow = { user_id: string; status: string; sales: number; paid_at: string | null; events: number };

/** Per reservation of the session: its status, its sales and their time, its payment.confirmed events. */
async function paymentRows(database: TestDatabase, sessionId: string): Promise<PaymentRow[]> {
  return queryRows<PaymentRow>(
    database.db,
    sql`SELECT r.user_id, r.status,
          (SELECT count(*)::int FROM sales s WHERE s.reservation_id = r.id) AS sales,
          (SELECT min(s.paid_at)::text FROM sales s WHERE s.reservation_id = r.id) AS paid_at,
          (SELECT count(*)::int FROM outbox o WHERE o.type = 'payment.confirmed' AND o.aggregate_id = r.id) AS events
        FROM reservations r WHERE r.session_id = ${sessionId}::uuid ORDER BY r.user_id`,
  );
}

/** Each sale's buyer and the (sub)transaction that wrote it. */
async function soldBy(database: TestDatabase, sessionId: string): Promise<Map<string, string>> {
  const rows = await queryRows<{ user_id: string; xmin: string }>(
    database.db,
    sql`SELECT user_id, xmin::text AS xmin FROM sales WHERE session_id = ${sessionId}::uuid`,
  );
  return new Map(rows.map((row) => [row.user_id, row.xmin]));
}

function pay(
  app: TestApp,
  reservationId: string,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  return call(app, "POST", `/reservations/${reservationId}/pay`, body, headers);
}

/**
 * Cuts a live hold's claim short (behind the service's back) and lets another buyer hold its seat
 * after the cut: paying the hold then meets that claim in the exclusion constraint, as a payment
 * does whose hold expired while it waited and whose seat someone else took meanwhile.
 */
async function takenAfterItsClaimEnded(
  app: TestApp,
  database: TestDatabase,
  reservationId: string,
  seatId: string,
) {
  await queryRows(
    database.db,
    sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim), now()) WHERE reservation_id = ${reservationId}::uuid`,
  );
  const taker = await hold(app, "taker", [seatId]);
  expect(taker.status).toBe(201);
  return taker.body.id as string;
}

/** The end of each claim of a reservation ('infinity' once sold). */
async function claimEnds(database: TestDatabase, reservationId: string): Promise<string[]> {
  const rows = await queryRows<{ ends: string }>(
    database.db,
    sql`SELECT upper(claim)::text AS ends FROM reservation_seats WHERE reservation_id = ${reservationId}::uuid`,
  );
  return rows.map((row) => row.ends);
}

onPostgres("group commit of payments on PostgreSQL", () => {
  const suite = useTestApp("postgres", { poolSize: 10, overrides: { paymentBatch: { maxInFlight: 1 } } });
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** One hold per user, each on a seat of its own, in `users`' order. */
  async function holds(seatIds: string[], users: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, user] of users.entries()) {
      const held = await hold(suite.app, user, [seatIds[i] as string]);
      expect(held.status).toBe(201);
      ids.push(held.body.id as string);
    }
    return ids;
  }

  /** Pays `stuckId` (stuck behind a row lock on it), so that the payments after it queue. */
  async function behindAStuckPayment(stuckId: string) {
    const blocker = await lockReservation(suite.database, stuckId);
    cleanups.push(blocker.end);
    const first = pay(suite.app, stuckId);
    await waitingPaymentBackend(suite.database);
    return { first, release: blocker.end };
  }

  it("makes the payments that arrived during a payment together, in one transaction", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const users = ["first", ...Array.from({ length: 8 }, (_, i) => `buyer-${i}`)];
    const [stuckId, ...ids] = await holds(seatIds, users);
    const { first, release } = await behindAStuckPayment(stuckId as string);
    const queued = ids.map((id) => pay(suite.app, id));
    await until(() => waitingPayments(suite.database.db) === 8, "8 payments queue");
    await release();

    expect((await first).status).toBe(200);
    const answers = await Promise.all(queued);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    const rows = await paymentRows(suite.database, session.id);
    expect(rows.every((row) => row.status === "CONFIRMED" && row.sales === 1 && row.events === 1)).toBe(true);
    const batched = rows.filter((row) => row.user_id.startsWith("buyer-"));
    expect(new Set(batched.map((row) => row.paid_at)).size).toBe(1);
    expect(batched[0]?.paid_at).not.toBe(rows.find((row) => row.user_id === "first")?.paid_at);
    // With no payment in the way of another, the batch was made set-wise, in one subtransaction.
    const sold = await soldBy(suite.database, session.id);
    expect(new Set(batched.map((row) => sold.get(row.user_id))).size).toBe(1);
    for (const [i, answer] of answers.entries()) {
      expect(answer.body).toMatchObject({ id: ids[i], userId: `buyer-${i}`, status: "CONFIRMED" });
      expect(answer.body.sale).toMatchObject({ amount: 12.5 });
      const shown = await call(suite.app, "GET", `/reservations/${ids[i]}`);
      expect(shown.body).toEqual(answer.body);
    }
  });

  it("two payments of one reservation in one batch make one sale and both answer it; a refused one fails alone", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuckId, twiceId, refusedId, otherId] = await holds(seatIds, ["a", "b", "c", "d"]);
    const { first, release } = await behindAStuckPayment(stuckId as string);
    const once = pay(suite.app, twiceId as string);
    const refused = pay(suite.app, refusedId as string, { userId: "not-c" });
    const twice = pay(suite.app, twiceId as string);
    const other = pay(suite.app, otherId as string);
    await until(() => waitingPayments(suite.database.db) === 4, "4 payments queue");
    await release();

    expect((await first).status).toBe(200);
    const [a, no, b, d] = await Promise.all([once, refused, twice, other]);
    expect([a.status, b.status, d.status]).toEqual([200, 200, 200]);
    expect(a.body.sale.id).toBe(b.body.sale.id);
    expect(b.body).toEqual(a.body);
    expect(no.status).toBe(403);
    expect(no.body).toMatchObject({ code: "RESERVATION_NOT_OWNED", reservationId: refusedId });
    const rows = await paymentRows(suite.database, session.id);
    expect(rows.map((row) => [row.user_id, row.status, row.sales, row.events])).toEqual([
      ["a", "CONFIRMED", 1, 1],
      ["b", "CONFIRMED", 1, 1],
      ["c", "PENDING", 0, 0],
      ["d", "CONFIRMED", 1, 1],
    ]);
    expect(rows.find((row) => row.user_id === "b")?.paid_at).toBe(
      rows.find((row) => row.user_id === "d")?.paid_at,
    );
  });

  it("payments with an Idempotency-Key go in the batch: each key taken and its answer remembered in its transaction", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuckId, keyedId, otherKeyedId, plainId] = await holds(seatIds, ["a", "b", "c", "d"]);
    const { first, release } = await behindAStuckPayment(stuckId as string);
    const keyed = pay(suite.app, keyedId as string, {}, { "idempotency-key": "batch-key-1" });
    const sameKey = pay(suite.app, keyedId as string, {}, { "idempotency-key": "batch-key-1" });
    const otherKeyed = pay(suite.app, otherKeyedId as string, {}, { "idempotency-key": "batch-key-2" });
    const plain = pay(suite.app, plainId as string);
    await until(() => waitingPayments(suite.database.db) === 4, "4 payments queue");
    await release();

    expect((await first).status).toBe(200);
    const [one, two, b, d] = await Promise.all([keyed, sameKey, otherKeyed, plain]);
    // Two uses of one key in one batch: one pays, the other finds the key in use.
    const [made, refused] = one.status === 200 ? [one, two] : [two, one];
    expect([made.status, refused.status, b.status, d.status]).toEqual([200, 409, 200, 200]);
    expect(refused.body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    const rows = await paymentRows(suite.database, session.id);
    expect(rows.map((row) => [row.user_id, row.status, row.sales, row.events])).toEqual([
      ["a", "CONFIRMED", 1, 1],
      ["b", "CONFIRMED", 1, 1],
      ["c", "CONFIRMED", 1, 1],
      ["d", "CONFIRMED", 1, 1],
    ]);
    expect(new Set(rows.filter((row) => row.user_id !== "a").map((row) => row.paid_at)).size).toBe(1);
    const keys = await queryRows<{ key: string; response_body: string }>(
      suite.database.db,
      sql`SELECT key, response_body FROM idempotency_keys WHERE key IN ('batch-key-1', 'batch-key-2') ORDER BY key`,
    );
    expect(keys.map((key) => [key.key, JSON.parse(key.response_body)])).toEqual([
      ["batch-key-1", made.body],
      ["batch-key-2", b.body],
    ]);
    const replay = await pay(suite.app, keyedId as string, {}, { "idempotency-key": "batch-key-1" });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(made.body);
    const reused = await pay(
      suite.app,
      keyedId as string,
      { userId: "b" },
      { "idempotency-key": "batch-key-1" },
    );
    expect(reused.status).toBe(422);
  });

  it("a payment that meets its seat claimed by someone else fails alone with 409; the rest of its batch is sold", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [stuckId, cutId, paidId, alsoPaidId] = await holds(seatIds, ["a", "b", "c", "d"]);
    const takerId = await takenAfterItsClaimEnded(
      suite.app,
      suite.database,
      cutId as string,
      seatIds[1] as string,
    );
    const cutEnds = await claimEnds(suite.database, cutId as string);
    const { first, release } = await behindAStuckPayment(stuckId as string);
    const queued = Promise.all([
      pay(suite.app, cutId as string),
      pay(suite.app, paidId as string),
      pay(suite.app, alsoPaidId as string),
    ]);
    await until(() => waitingPayments(suite.database.db) === 3, "3 payments queue");
    await release();

    expect((await first).status).toBe(200);
    const [cut, paid, alsoPaid] = await queued;
    expect(cut.status).toBe(409);
    expect(cut.body).toMatchObject({ code: "RESERVATION_EXPIRED", reservationId: cutId });
    expect([paid.status, alsoPaid.status]).toEqual([200, 200]);
    const rows = await paymentRows(suite.database, session.id);
    expect(rows.map((row) => [row.user_id, row.status, row.sales, row.events])).toEqual([
      ["a", "CONFIRMED", 1, 1],
      ["b", "PENDING", 0, 0],
      ["c", "CONFIRMED", 1, 1],
      ["d", "CONFIRMED", 1, 1],
      ["taker", "PENDING", 0, 0],
    ]);
    expect(rows.find((row) => row.user_id === "c")?.paid_at).toBe(
      rows.find((row) => row.user_id === "d")?.paid_at,
    );
    // The batch could not be made set-wise: each payment went in a subtransaction of its own.
    const sold = await soldBy(suite.database, session.id);
    expect(sold.get("c")).not.toBe(sold.get("d"));
    expect(await claimEnds(suite.database, cutId as string)).toEqual(cutEnds);
    expect(await claimEnds(suite.database, takerId)).not.toContain("infinity");
  });

  it("a batch whose connection dies answers every payment of it 503, sells nothing, and the next batch works", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const users = ["first", ...Array.from({ length: 10 }, (_, i) => `doomed-${i}`)];
    const [stuckId, ...ids] = await holds(seatIds, users);
    // The batch will wait on a second row lock, on the reservation it pays last (id order).
    const lastId = [...ids].sort().at(-1) as string;
    const second = await lockReservation(suite.database, lastId);
    cleanups.push(second.end);
    const { first, release } = await behindAStuckPayment(stuckId as string);
    const doomed = ids.map((id) => pay(suite.app, id));
    await until(() => waitingPayments(suite.database.db) === 10, "10 payments queue");
    await release();
    expect((await first).status).toBe(200);
    const pid = await waitingPaymentBackend(suite.database);
    await queryRows(suite.database.db, sql`SELECT pg_terminate_backend(${pid}::int)`);

    const answers = await Promise.all(doomed);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 503));
    expect(answers.every((answer) => answer.body.code === "SERVICE_UNAVAILABLE")).toBe(true);
    await second.end();
    // The nine paid before the cut rolled back with it: no sale, no event, still on hold.
    const rows = await paymentRows(suite.database, session.id);
    expect(rows.filter((row) => row.user_id.startsWith("doomed-"))).toEqual(
      ids.map((_, i) => ({ user_id: `doomed-${i}`, status: "PENDING", sales: 0, paid_at: null, events: 0 })),
    );

    const retried = await Promise.all(ids.map((id) => pay(suite.app, id)));
    expect(retried.map((answer) => answer.status)).toEqual(retried.map(() => 200));
    expect((await paymentRows(suite.database, session.id)).every((row) => row.sales === 1)).toBe(true);
  });
});

describe.each(availableDrivers())("group commit on %s, as configured by default", (driver) => {
  const suite = useTestApp(driver);

  it("many concurrent holds, some contending: every seat claimed once, every 201 in the rows", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => hold(suite.app, `crowd-${i}`, [seatIds[i % 30] as string])),
    );
    const won = answers.filter((answer) => answer.status === 201);
    expect(won).toHaveLength(30);
    expect(answers.filter((answer) => answer.status === 409)).toHaveLength(30);
    const rows = await holdRows(suite.database, session.id);
    expect(rows.map((row) => row.user_id).sort()).toEqual(won.map((answer) => answer.body.userId).sort());
    const seats = await queryRows<{ n: number; distinct: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n, count(DISTINCT seat_id)::int AS distinct FROM reservation_seats
          WHERE session_id = ${session.id}::uuid`,
    );
    expect(seats[0]).toEqual({ n: 30, distinct: 30 });
  });

  it("a payment that meets its seat claimed by someone else answers 409 RESERVATION_EXPIRED and sells nothing", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "cut", [seatIds[0] as string, seatIds[1] as string]);
    expect(held.status).toBe(201);
    const takerId = await takenAfterItsClaimEnded(
      suite.app,
      suite.database,
      held.body.id,
      seatIds[1] as string,
    );
    const cutEnds = await claimEnds(suite.database, held.body.id);

    const paid = await pay(suite.app, held.body.id);
    expect(paid.status).toBe(409);
    expect(paid.body.code).toBe("RESERVATION_EXPIRED");
    expect((await call(suite.app, "GET", `/reservations/${held.body.id}`)).body.sale).toBeNull();
    expect(await claimEnds(suite.database, held.body.id)).toEqual(cutEnds);
    expect(await claimEnds(suite.database, takerId)).not.toContain("infinity");
  });

  it("many concurrent payments, three of each hold: one sale per hold, every 200 answers it", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const held = await hold(suite.app, `payer-${i}`, [seatIds[i] as string]);
      ids.push(held.body.id as string);
    }
    const answers = await Promise.all(
      [...ids, ...ids, ...ids].map((id) => call(suite.app, "POST", `/reservations/${id}/pay`, {})),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    const sales = await queryRows<{ reservation_id: string; id: string }>(
      suite.database.db,
      sql`SELECT reservation_id::text, id::text FROM sales WHERE session_id = ${session.id}::uuid`,
    );
    expect(sales).toHaveLength(20);
    const saleOf = new Map(sales.map((sale) => [sale.reservation_id, sale.id]));
    for (const answer of answers) expect(answer.body.sale.id).toBe(saleOf.get(answer.body.id));
    const events = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM outbox WHERE type = 'payment.confirmed' AND payload->>'sessionId' = ${session.id}`,
    );
    expect(events[0]?.n).toBe(20);
  });
});
