import { describe, expect, it } from "vitest";
import { call, createSessionVia, createTestApp, hold, useTestApp } from "./support/app.ts";
import { availableDrivers, openTestDatabase } from "./support/database.ts";

describe.each(availableDrivers())("booking flow on %s", (driver) => {
  const suite = useTestApp(driver);

  it("creates a session with its seat grid, labels and counts", async () => {
    const created = await call(suite.app, "POST", "/sessions", {
      movieId: "m",
      room: "R",
      startsAt: "2026-12-24T20:00:00+01:00",
      price: 9.99,
      rowsCount: 28,
      seatsPerRow: 3,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      price: 9.99,
      startsAt: "2026-12-24T19:00:00.000Z",
      totalSeats: 84,
      counts: { total: 84, available: 84, held: 0, sold: 0 },
    });
    const labels = created.body.seats.map((seat: { label: string }) => seat.label);
    expect(labels.slice(0, 4)).toEqual(["A1", "A2", "A3", "B1"]);
    expect(labels.slice(-6)).toEqual(["AA1", "AA2", "AA3", "AB1", "AB2", "AB3"]);

    const read = await call(suite.app, "GET", `/sessions/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.seats).toEqual(created.body.seats);
  });

  it("holds, pays and lists the purchase in the sales history", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "alice", [seatIds[1] as string, seatIds[0] as string]);
    expect(held.status).toBe(201);
    expect(held.body).toMatchObject({
      sessionId: session.id,
      userId: "alice",
      status: "PENDING",
      totalPrice: 25,
      sale: null,
    });
    expect(held.body.seats.map((seat: { label: string }) => seat.label)).toEqual(["A1", "A2"]);
    const ttl = Date.parse(held.body.expiresAt) - Date.parse(held.body.createdAt);
    expect(ttl).toBe(30_000);

    const map = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(map.body.counts).toMatchObject({ available: 38, held: 2, sold: 0 });

    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe("CONFIRMED");
    expect(paid.body.sale).toMatchObject({ amount: 25 });

    const again = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(again.status).toBe(200);
    expect(again.body.sale).toEqual(paid.body.sale);

    const after = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(after.body.counts).toMatchObject({ available: 38, held: 0, sold: 2 });
    expect(after.body.seats.slice(0, 2).map((seat: { status: string }) => seat.status)).toEqual([
      "SOLD",
      "SOLD",
    ]);

    const history = await call(suite.app, "GET", "/sales/history/alice");
    expect(history.status).toBe(200);
    expect(history.body).toEqual([
      {
        saleId: paid.body.sale.id,
        reservationId: held.body.id,
        session: {
          id: session.id,
          movieId: "dune-part-two",
          room: "Room 1",
          startsAt: "2026-12-24T20:00:00.000Z",
        },
        seats: ["A1", "A2"],
        amount: 25,
        paidAt: paid.body.sale.paidAt,
      },
    ]);

    const mine = await call(suite.app, "GET", "/reservations/user/alice");
    expect(mine.body.map((reservation: { id: string }) => reservation.id)).toContain(held.body.id);
  });

  it("refuses a held seat with 409 naming it, and takes nothing of a partly taken request", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const [a, b, c] = seatIds as [string, string, string];
    expect((await hold(suite.app, "bob", [a])).status).toBe(201);
    const refused = await hold(suite.app, "carol", [b, a, c]);
    expect(refused.status).toBe(409);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(refused.body).toMatchObject({ code: "SEAT_UNAVAILABLE", seatIds: [a], status: 409 });
    expect(refused.body.requestId).toBe(refused.headers.get("x-request-id"));
    const map = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(map.body.counts).toMatchObject({ held: 1, available: 39 });
    expect((await hold(suite.app, "carol", [b, c])).status).toBe(201);
  });

  it("cancels a live hold and frees its seats at once", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const held = await hold(suite.app, "dave", [seatIds[0] as string]);
    const cancelled = await call(suite.app, "POST", `/reservations/${held.body.id}/cancel`, {
      userId: "dave",
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("CANCELLED");
    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(paid.body.code).toBe("RESERVATION_CANCELLED");
    expect((await hold(suite.app, "erin", [seatIds[0] as string])).status).toBe(201);
  });

  it("pages through sessions with a cursor", async () => {
    const fresh = await openTestDatabase(driver);
    try {
      const pagedApp = createTestApp(fresh.db);
      for (const day of [3, 1, 2])
        await createSessionVia(pagedApp, { startsAt: `2027-01-0${day}T20:00:00Z` });
      const first = await call(pagedApp, "GET", "/sessions?limit=2");
      expect(first.body.items.map((s: { startsAt: string }) => s.startsAt.slice(0, 10))).toEqual([
        "2027-01-01",
        "2027-01-02",
      ]);
      const second = await call(pagedApp, "GET", `/sessions?limit=2&cursor=${first.body.nextCursor}`);
      expect(second.body.items.map((s: { startsAt: string }) => s.startsAt.slice(0, 10))).toEqual([
        "2027-01-03",
      ]);
      expect(second.body.nextCursor).toBeNull();
    } finally {
      await fresh.close();
    }
  });
});
