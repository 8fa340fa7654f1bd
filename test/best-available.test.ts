import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { pickBestSeats } from "../src/booking/best-available.ts";
import type { SeatView } from "../src/booking/views.ts";
import { queryRows } from "../src/db/database.ts";
import { createNodePostgresDatabase } from "../src/db/node-postgres.ts";
import { call, createTestApp, type TestApp, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

/** A seat map from rows of text: "." free, "x" taken, a letter: a free seat of that category. */
function mapOf(rows: string[]): SeatView[] {
  return rows.flatMap((text, r) => {
    const row = String.fromCharCode(65 + r);
    return [...text].map((mark, index) => ({
      id: `${row}${index + 1}`,
      row,
      number: index + 1,
      label: `${row}${index + 1}`,
      category: /[a-z]/.test(mark) ? mark : "standard",
      status: mark === "x" ? ("HELD" as const) : ("AVAILABLE" as const),
    }));
  });
}

describe("picking the best available seats", () => {
  it("an empty room: adjacent seats in the middle of the front row", () => {
    expect(pickBestSeats(mapOf(["........", "........"]), { quantity: 2 })).toEqual({
      seatIds: ["A4", "A5"],
      kind: "adjacent",
    });
    expect(pickBestSeats(mapOf([".......", "......."]), { quantity: 3 })?.seatIds).toEqual([
      "A3",
      "A4",
      "A5",
    ]);
  });

  it("passes over a front-row block that would strand a single seat, for one that strands none", () => {
    // Row A has four free seats between taken ones: any three of them leave one alone. In row B,
    // B2-B4 and B3-B5 would too; B1-B3 and B4-B6, as near the centre, strand none.
    const seats = mapOf(["x....x", "......"]);
    expect(pickBestSeats(seats, { quantity: 3 })).toEqual({ seatIds: ["B1", "B2", "B3"], kind: "adjacent" });
    expect(pickBestSeats(seats, { quantity: 4 })?.seatIds).toEqual(["A2", "A3", "A4", "A5"]);
  });

  it("strands a seat only when no block strands none, then takes the nearest seats across rows", () => {
    expect(pickBestSeats(mapOf(["x....x"]), { quantity: 3 })?.kind).toBe("adjacent-orphan");
    expect(pickBestSeats(mapOf(["x.x.x.x", "xx.x.xx"]), { quantity: 3 })).toEqual({
      seatIds: ["A4", "B3", "B5"],
      kind: "scattered",
    });
    expect(pickBestSeats(mapOf(["x.x", "x.x"]), { quantity: 3 })).toBeUndefined();
  });

  it("keeps to one category and leaves out seats being claimed", () => {
    const seats = mapOf(["...vv...", "vvvv...."]);
    expect(pickBestSeats(seats, { quantity: 2, category: "v" })?.seatIds).toEqual(["A4", "A5"]);
    expect(pickBestSeats(seats, { quantity: 3, category: "v" })?.seatIds).toEqual(["B1", "B2", "B3"]);
    // A4 being claimed: A1-A2 and A2-A3 would strand a seat; A5-A6 is the nearest that does not.
    expect(pickBestSeats(seats, { quantity: 2, excluded: new Set(["A4"]) })?.seatIds).toEqual(["A5", "A6"]);
  });
});

describe.each(availableDrivers())("best available through the API on %s", (driver) => {
  const suite = useTestApp(driver);
  const createSession = async (rowsCount = 4, seatsPerRow = 6, extra: Record<string, unknown> = {}) => {
    const created = await call(suite.app, "POST", "/sessions", {
      movieId: "m",
      room: "R",
      startsAt: "2026-12-24T20:00:00Z",
      price: 10,
      rowsCount,
      seatsPerRow,
      ...extra,
    });
    return created.body as { id: string; seats: { id: string; label: string }[] };
  };
  const best = (sessionId: string, quantity: number, more: Record<string, unknown> = {}) =>
    call(suite.app, "POST", "/reservations", { userId: "ann", sessionId, quantity, ...more });
  const labels = (body: { seats: { label: string }[] }) => body.seats.map((seat) => seat.label);

  it("holds the best seats, then the next best, priced by category", async () => {
    const session = await createSession(4, 6, {
      categories: [{ key: "premium", name: "Premium", price: 15, rows: ["C"] }],
    });
    const first = await best(session.id, 2);
    expect(first.status).toBe(201);
    expect(labels(first.body)).toEqual(["A3", "A4"]);
    expect(first.body.totalPrice).toBe(20);
    const second = await best(session.id, 3);
    // Row A has no three adjacent seats left; B2-B4 would strand B1.
    expect(labels(second.body)).toEqual(["B1", "B2", "B3"]);
    const premium = await best(session.id, 2, { category: "premium" });
    expect(labels(premium.body)).toEqual(["C3", "C4"]);
    expect(premium.body.totalPrice).toBe(30);
  });

  it("answers 409 NOT_ENOUGH_SEATS, 404 for an unknown category or session, 400 for a mixed body", async () => {
    const session = await createSession(1, 3);
    const none = await best(session.id, 4);
    expect([none.status, none.body.code, none.body.quantity]).toEqual([409, "NOT_ENOUGH_SEATS", 4]);
    const category = await best(session.id, 1, { category: "vip" });
    expect([category.status, category.body.code]).toEqual([404, "CATEGORY_NOT_FOUND"]);
    const unknown = await best(crypto.randomUUID(), 1);
    expect([unknown.status, unknown.body.code]).toEqual([404, "SESSION_NOT_FOUND"]);
    for (const body of [
      { userId: "ann", sessionId: session.id, quantity: 1, seatIds: [session.seats[0]?.id] },
      { userId: "ann", sessionId: session.id },
      { userId: "ann", quantity: 2 },
      { userId: "ann", sessionId: session.id, quantity: 11 },
      { userId: "ann", sessionId: session.id, quantity: 0 },
    ]) {
      expect((await call(suite.app, "POST", "/reservations", body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await best(session.id, 3)).status).toBe(201);
  });

  it("an Idempotency-Key replays the first hold instead of holding more seats", async () => {
    const session = await createSession(2, 4);
    const headers = { "idempotency-key": `best-${crypto.randomUUID()}` };
    const body = { userId: "ann", sessionId: session.id, quantity: 2 };
    const first = await call(suite.app, "POST", "/reservations", body, headers);
    const again = await call(suite.app, "POST", "/reservations", body, headers);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.id).toBe(first.body.id);
    // Sold out since: the retry is still the first answer, not a refusal for want of seats.
    expect((await best(session.id, 6)).status).toBe(201);
    const late = await call(suite.app, "POST", "/reservations", body, headers);
    expect([late.status, late.body.id]).toEqual([201, first.body.id]);
    const reused = await call(suite.app, "POST", "/reservations", { ...body, quantity: 1 }, headers);
    expect([reused.status, reused.body.code]).toEqual([422, "IDEMPOTENCY_KEY_REUSED"]);
  });
});

describe.skipIf(!availableDrivers().includes("postgres"))("a best-available crowd on PostgreSQL", () => {
  const suite = useTestApp("postgres", { poolSize: 20 });

  it("200 buyers of 2-4 seats on 100 seats, through two instances: no seat twice, every seat sold that can be, no orphan seat left", async () => {
    const created = await call(suite.app, "POST", "/sessions", {
      movieId: "m",
      room: "R",
      startsAt: "2026-12-24T20:00:00Z",
      price: 10,
      rowsCount: 10,
      seatsPerRow: 10,
    });
    const sessionId = created.body.id as string;
    const quantities = Array.from({ length: 200 }, (_, index) => 2 + (index % 3));
    // Two instances (each with its own pool and its own memory of picks) share the crowd, so
    // their picks collide and losers go on to their next best.
    const other = createNodePostgresDatabase(suite.database.url as string, 20);
    const apps = [suite.app, createTestApp(other.db)];
    const answers = await Promise.all(
      quantities.map((quantity, index) =>
        call(apps[index % 2] as TestApp, "POST", "/reservations", {
          userId: `buyer-${index}`,
          sessionId,
          quantity,
        }),
      ),
    ).finally(() => other.close());
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status !== 201 && status !== 409)).toEqual([]);
    const won = answers.filter((answer) => answer.status === 201);
    const refused = answers.filter((answer) => answer.status === 409);
    expect(new Set(refused.map((answer) => answer.body.code))).toEqual(new Set(["NOT_ENOUGH_SEATS"]));
    for (const [index, answer] of answers.entries()) {
      if (answer.status === 201) expect(answer.body.seats).toHaveLength(quantities[index] as number);
    }

    // The rows: no seat in two live claims, and exactly the seats the winners were answered.
    const claims = await queryRows<{ seat_id: string; n: number }>(
      suite.database.db,
      sql`SELECT seat_id::text, count(*)::int AS n FROM reservation_seats
          WHERE session_id = ${sessionId}::uuid AND claim && tstzrange(now(), 'infinity') GROUP BY seat_id`,
    );
    expect(claims.filter((claim) => claim.n > 1)).toEqual([]);
    const answered = won.flatMap((answer) => answer.body.seatIds as string[]);
    expect(new Set(answered).size).toBe(answered.length);
    expect(new Set(claims.map((claim) => claim.seat_id))).toEqual(new Set(answered));

    // Free seats only ever decrease here, so a buyer refused for want of seats saw fewer than it
    // wanted: fewer are free now than the smallest quantity refused.
    const map = await call(suite.app, "GET", `/sessions/${sessionId}/seats`);
    const free = map.body.counts.available as number;
    const smallestRefused = Math.min(...refused.map((answer) => answer.body.quantity as number));
    expect(free).toBeLessThan(smallestRefused);
    expect(map.body.counts.held).toBe(100 - free);

    // No seat stranded alone between taken seats while a buyer could have avoided it: with every
    // seat sold but at most one, no free seat is left alone unless it is the last one.
    const rows = new Map<string, string[]>();
    const statusOf = new Map<string, string>(
      map.body.seats.map((seat: { id: string; status: string }) => [seat.id, seat.status]),
    );
    for (const seat of created.body.seats as { id: string; row: string }[]) {
      rows.set(seat.row, [...(rows.get(seat.row) ?? []), statusOf.get(seat.id) as string]);
    }
    const orphans = [...rows.values()].flatMap((row) =>
      row.filter(
        (status, index) =>
          status === "AVAILABLE" && row[index - 1] !== "AVAILABLE" && row[index + 1] !== "AVAILABLE",
      ),
    );
    expect(orphans.length).toBeLessThanOrEqual(free < 2 ? free : 0);
    console.info(`best-available crowd: ${won.length} holds, ${refused.length} refused, ${free} seats left`);
  });
});
