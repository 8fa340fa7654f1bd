import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { rememberSeatMap, type SeatInfo, seatsById, selectSeats } from "../src/booking/seat-catalogue.ts";
import { createSession } from "../src/booking/sessions.ts";
import type { Database } from "../src/db/database.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";

const START = new Date("2030-01-01T20:00:00Z");

async function newSession(db: Database, rowsCount: number, seatsPerRow: number) {
  const created = await createSession(db, {
    movieId: "catalogue",
    room: `room-${crypto.randomUUID()}`,
    startsAt: START,
    price: 10,
    rowsCount,
    seatsPerRow,
    categories: rowsCount > 1 ? [{ key: "front", name: "Front", price: 7.5, rows: ["A"] }] : undefined,
  });
  if (!created.ok) throw new Error("session not created");
  return created.value.view;
}

/** The catalogue loads a session in the background: wait until its seat is answered from memory. */
async function untilKept(db: Database, seatId: string): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const answer = selectSeats(db, [seatId]);
    if (!(answer instanceof Promise)) return;
    await answer;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`seat ${seatId} never answered from memory`);
}

describe.each(availableDrivers())("the seat catalogue on %s", (driver) => {
  // A database per test: a catalogue belongs to its database, and each test starts from none.
  const opened: TestDatabase[] = [];
  async function freshDatabase(): Promise<TestDatabase> {
    const database = await openTestDatabase(driver);
    opened.push(database);
    return database;
  }
  afterAll(async () => {
    for (const database of opened) await database.close();
  });

  it("answers from memory exactly what the rows say: labels, categories, prices, seat-map order", async () => {
    const { db } = await freshDatabase();
    const session = await newSession(db, 3, 4);
    const [box, ...rest] = session.seats;
    if (!box) throw new Error("no seats");
    // A label that is not row + number is kept as it is.
    await db.execute(sql`UPDATE seats SET label = 'Box 1' WHERE id = ${box.id}::uuid`);
    const read = new Map<string, SeatInfo>();
    for (const seat of session.seats) {
      const answer = await selectSeats(db, [seat.id]);
      if (!answer.ok) throw new Error(answer.error.code);
      read.set(seat.id, answer.value.seats[0] as SeatInfo);
    }
    expect(read.get(box.id)).toMatchObject({
      row: "A",
      number: 1,
      label: "Box 1",
      category: "front",
      priceCents: 750,
    });
    expect(read.get(session.seats[11]?.id as string)).toMatchObject({ label: "C4", category: "standard" });

    rememberSeatMap(db, session.id);
    await untilKept(db, box.id);
    for (const seat of session.seats) {
      const answer = selectSeats(db, [seat.id]);
      expect(answer).not.toBeInstanceOf(Promise);
      expect(answer).toEqual({
        ok: true,
        value: {
          sessionId: session.id,
          totalCents: read.get(seat.id)?.priceCents,
          seats: [read.get(seat.id)],
        },
      });
    }
    const [last, first] = [rest.at(-1)?.id as string, box.id];
    expect(selectSeats(db, [last, first])).toEqual({
      ok: true,
      value: { sessionId: session.id, totalCents: 750 + 1000, seats: [read.get(first), read.get(last)] },
    });
    expect(await seatsById(db, [last, first])).toEqual(
      new Map([
        [last, read.get(last)],
        [first, read.get(first)],
      ]),
    );

    const other = await newSession(db, 1, 2);
    const mixed = await selectSeats(db, [first, other.seats[0]?.id as string]);
    expect(mixed.ok || mixed.error.code).toBe("SEATS_FROM_MULTIPLE_SESSIONS");
  });

  it("keeps at most 100,000 seats: the session used least recently makes room", async () => {
    const { db } = await freshDatabase();
    const sessions: Awaited<ReturnType<typeof newSession>>[] = [];
    for (let i = 0; i < 10; i++) {
      const session = await newSession(db, 100, 100);
      rememberSeatMap(db, session.id);
      await untilKept(db, session.seats[0]?.id as string);
      sessions.push(session);
    }
    const seatOf = (index: number) => sessions[index]?.seats[0]?.id as string;
    // 100,000 seats in memory; the first session is used again, so the second is the oldest.
    expect(selectSeats(db, [seatOf(0)])).not.toBeInstanceOf(Promise);
    const eleventh = await newSession(db, 100, 100);
    rememberSeatMap(db, eleventh.id);
    await untilKept(db, eleventh.seats[0]?.id as string);
    expect(selectSeats(db, [seatOf(0)])).not.toBeInstanceOf(Promise);
    expect(selectSeats(db, [seatOf(2)])).not.toBeInstanceOf(Promise);
    const dropped = selectSeats(db, [seatOf(1)]);
    expect(dropped).toBeInstanceOf(Promise);
    // Read again from the database, with the same answer.
    expect(await dropped).toMatchObject({ ok: true, value: { sessionId: sessions[1]?.id, totalCents: 750 } });
  }, 120_000);
});
