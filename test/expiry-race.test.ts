import { sql } from "drizzle-orm";
import pg from "pg";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { expireHold } from "../src/booking/expire.ts";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, hold, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

// A transaction of its own holds a reservation's row lock (a slow payment, say) while the hold
// expires; only a real server has a second connection to do that.
const contended = availableDrivers().includes("postgres") ? describe : describe.skip;

contended("settling a hold at its expiry instant on PostgreSQL", () => {
  const suite = useTestApp("postgres", { overrides: { reservationTtlSeconds: 1 } });
  let seatIds: string[];
  let holder: pg.Client | undefined;

  beforeAll(async () => {
    ({ seatIds } = await createSessionVia(suite.app, { rowsCount: 2, seatsPerRow: 10 }));
  });
  afterEach(async () => {
    await holder?.end();
    holder = undefined;
  });

  /** Takes the reservation's row lock in another transaction, as a payment in flight does. */
  const lockRow = async (reservationId: string) => {
    holder = new pg.Client({ connectionString: suite.database.url });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM reservations WHERE id = $1 FOR UPDATE", [reservationId]);
    const [{ pid }] = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows as [
      { pid: number },
    ];
    return { pid, release: () => (holder as pg.Client).query("COMMIT") };
  };

  const until = async (condition: () => Promise<boolean>) => {
    while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
  };
  const waitingOn = async (pid: number) =>
    (
      await queryRows<{ n: number }>(
        suite.database.db,
        sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`,
      )
    )[0]?.n === 1;
  const expired = async (reservationId: string) =>
    (
      await queryRows<{ past: boolean }>(
        suite.database.db,
        sql`SELECT expires_at <= clock_timestamp() AS past FROM reservations WHERE id = ${reservationId}::uuid`,
      )
    )[0]?.past === true;
  const claimsOf = (reservationId: string) =>
    queryRows<{ status: string; reaches_past_end: boolean; endless: boolean }>(
      suite.database.db,
      sql`SELECT r.status, upper(rs.claim) > r.expires_at AS reaches_past_end, upper(rs.claim) = 'infinity' AS endless
          FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
          WHERE rs.reservation_id = ${reservationId}::uuid`,
    );

  /**
   * A hold of `seat` whose row lock another transaction holds, and a request on it that waits for
   * that lock; the request is sent while the hold is live (or, `late`, once it has expired) and
   * the hold's time is up before this returns.
   */
  const settleAfterExpiry = async (
    seat: string,
    settle: (reservationId: string) => Promise<unknown>,
    late = false,
  ) => {
    const held = await hold(suite.app, "ann", [seat]);
    expect(held.status).toBe(201);
    const lock = await lockRow(held.body.id);
    if (late) await until(() => expired(held.body.id));
    const settled = settle(held.body.id);
    await until(() => waitingOn(lock.pid));
    await until(() => expired(held.body.id));
    return { reservationId: held.body.id as string, lock, settled };
  };

  it("a cancel that waited for the row lock past expiry answers 409 and leaves the claim ending at expiry", async () => {
    const seat = seatIds[0] as string;
    const { reservationId, lock, settled } = await settleAfterExpiry(seat, (id) =>
      call(suite.app, "POST", `/reservations/${id}/cancel`, { userId: "ann" }),
    );
    await lock.release();
    const cancelled = (await settled) as Awaited<ReturnType<typeof call>>;
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.code).toBe("RESERVATION_EXPIRED");
    expect(await claimsOf(reservationId)).toEqual([
      { status: "PENDING", reaches_past_end: false, endless: false },
    ]);
  });

  it("a cancel that waited past expiry while another buyer took the seat answers 409, not 500", async () => {
    const seat = seatIds[1] as string;
    const { reservationId, lock, settled } = await settleAfterExpiry(seat, (id) =>
      call(suite.app, "POST", `/reservations/${id}/cancel`, { userId: "ann" }),
    );
    const second = await hold(suite.app, "bob", [seat]);
    expect(second.status).toBe(201);
    await lock.release();
    const cancelled = (await settled) as Awaited<ReturnType<typeof call>>;
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.code).toBe("RESERVATION_EXPIRED");
    expect(await claimsOf(reservationId)).toEqual([
      { status: "PENDING", reaches_past_end: false, endless: false },
    ]);
    expect(await claimsOf(second.body.id)).toEqual([
      { status: "PENDING", reaches_past_end: false, endless: false },
    ]);
  });

  it("a payment that waited for the row lock past expiry answers 409 and sells nothing", async () => {
    const seat = seatIds[2] as string;
    const { reservationId, lock, settled } = await settleAfterExpiry(seat, (id) =>
      call(suite.app, "POST", `/reservations/${id}/pay`, { userId: "ann" }),
    );
    const second = await hold(suite.app, "bob", [seat]);
    expect(second.status).toBe(201);
    await lock.release();
    const paid = (await settled) as Awaited<ReturnType<typeof call>>;
    expect(paid.status).toBe(409);
    expect(paid.body.code).toBe("RESERVATION_EXPIRED");
    expect(await claimsOf(reservationId)).toEqual([
      { status: "PENDING", reaches_past_end: false, endless: false },
    ]);
    const sales = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM sales WHERE reservation_id = ${reservationId}::uuid`,
    );
    expect(sales[0]?.n).toBe(0);
  });

  it("an expiry callback that waited for the row lock expires the hold and leaves its claim as it was", async () => {
    const seat = seatIds[3] as string;
    const { reservationId, lock, settled } = await settleAfterExpiry(
      seat,
      (id) => expireHold(suite.database.db, id),
      true,
    );
    await lock.release();
    expect(await settled).toBe("expired");
    expect(await claimsOf(reservationId)).toEqual([
      { status: "EXPIRED", reaches_past_end: false, endless: false },
    ]);
  });

  it("a cancel cuts a claim at now or at its own end, whichever is earlier: never later", async () => {
    const held = await hold(suite.app, "ann", [seatIds[4] as string]);
    expect(held.status).toBe(201);
    // A claim that already ends before its live hold does (written behind the app's back).
    const [before] = await queryRows<{ ends: string }>(
      suite.database.db,
      sql`UPDATE reservation_seats SET claim = tstzrange(lower(claim), lower(claim) + interval '1 microsecond')
          WHERE reservation_id = ${held.body.id}::uuid RETURNING upper(claim)::text AS ends`,
    );
    const cancelled = await call(suite.app, "POST", `/reservations/${held.body.id}/cancel`, {
      userId: "ann",
    });
    expect(cancelled.status).toBe(200);
    const [after] = await queryRows<{ ends: string }>(
      suite.database.db,
      sql`SELECT upper(claim)::text AS ends FROM reservation_seats WHERE reservation_id = ${held.body.id}::uuid`,
    );
    expect(after?.ends).toBe(before?.ends);
  });
});
