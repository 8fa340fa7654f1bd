import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { PgliteDatabase } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { MIGRATIONS_FOLDER } from "../src/db/migrate-node.ts";
import { createPgliteDatabase } from "../src/db/pglite.ts";
import { call, createTestApp, hold, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

const BASE = { movieId: "m", room: "R", startsAt: "2026-12-24T20:00:00Z", rowsCount: 4, seatsPerRow: 5 };

type Seat = { id: string; label: string; category: string; status: string };

describe.each(availableDrivers())("price categories on %s", (driver) => {
  const suite = useTestApp(driver);
  const create = (body: Record<string, unknown>) =>
    call(suite.app, "POST", "/sessions", { ...BASE, ...body });
  const seatsByLabel = (seats: Seat[]) => new Map(seats.map((seat) => [seat.label, seat]));

  it("the old body gives one category, standard, at the price", async () => {
    const created = await create({ price: 12.5 });
    expect(created.status).toBe(201);
    expect(created.body.categories).toEqual([{ key: "standard", name: "Standard", price: 12.5 }]);
    expect(new Set(created.body.seats.map((seat: Seat) => seat.category))).toEqual(new Set(["standard"]));
  });

  it("rows and seat ranges price seats; a hold's total and the sale's amount are the sum of its seats' prices", async () => {
    const created = await create({
      price: 10,
      categories: [
        { key: "vip", name: "VIP", price: 25.5, rows: ["A"] },
        { key: "aisle", name: "Aisle", price: 12, seats: ["B1", "C1-C2", "D4-5"] },
      ],
    });
    expect(created.status).toBe(201);
    expect(created.body.price).toBe(10);
    expect(created.body.categories).toEqual([
      { key: "vip", name: "VIP", price: 25.5 },
      { key: "aisle", name: "Aisle", price: 12 },
      { key: "standard", name: "Standard", price: 10 },
    ]);
    const seats = seatsByLabel(created.body.seats);
    const categoryOf = (label: string) => seats.get(label)?.category;
    expect(["A1", "A5", "B1", "C1", "C2", "D4", "D5", "B2", "C3", "D1"].map(categoryOf)).toEqual([
      "vip",
      "vip",
      "aisle",
      "aisle",
      "aisle",
      "aisle",
      "aisle",
      "standard",
      "standard",
      "standard",
    ]);
    const read = await call(suite.app, "GET", `/sessions/${created.body.id}`);
    expect(read.body.seats).toEqual(created.body.seats);

    const ids = ["A2", "B1", "B2"].map((label) => seats.get(label)?.id as string);
    const held = await hold(suite.app, "alice", ids);
    expect(held.status).toBe(201);
    expect(held.body.totalPrice).toBe(47.5);
    const released = await call(suite.app, "DELETE", `/reservations/${held.body.id}/seats/${ids[0]}`);
    expect(released.body.totalPrice).toBe(22);
    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    expect(paid.body.sale.amount).toBe(22);
    const [row] = await queryRows<{ amount_cents: number }>(
      suite.database.db,
      sql`SELECT amount_cents FROM sales WHERE reservation_id = ${held.body.id}::uuid`,
    );
    expect(Number(row?.amount_cents)).toBe(2200);
  });

  it("without a price, categories must cover every seat; the session's price is the lowest", async () => {
    const created = await create({
      categories: [
        { key: "front", name: "Front", price: 8, rows: ["A", "B"] },
        { key: "back", name: "Back", price: 6.5 },
      ],
    });
    expect(created.status).toBe(201);
    expect(created.body.price).toBe(6.5);
    expect(created.body.categories.map((category: { key: string }) => category.key)).toEqual([
      "front",
      "back",
    ]);
    const held = await hold(suite.app, "bob", [created.body.seats[0].id, created.body.seats[19].id]);
    expect(held.body.totalPrice).toBe(14.5);
  });

  it("refuses categories that do not price every seat exactly once, naming the problem", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ categories: [{ key: "a", name: "A", price: 1, rows: ["A"] }] }, /seat B1 has no category/],
      [
        {
          price: 1,
          categories: [
            { key: "a", name: "A", price: 1, rows: ["A"], seats: ["A2"] },
            { key: "b", name: "B", price: 2, seats: ["A2"] },
          ],
        },
        /seat A2 is in both a and b/,
      ],
      [{ price: 1, categories: [{ key: "a", name: "A", price: 1, rows: ["Z"] }] }, /no row Z/],
      [
        { price: 1, categories: [{ key: "a", name: "A", price: 1, seats: ["A4-A9"] }] },
        /A4-A9 is not a seat/,
      ],
      [
        { price: 1, categories: [{ key: "a", name: "A", price: 1, seats: ["A1-B2"] }] },
        /A1-B2 is not a seat/,
      ],
      [
        {
          price: 1,
          categories: [
            { key: "a", name: "A", price: 1, rows: ["A"] },
            { key: "a", name: "A2", price: 2, rows: ["B"] },
          ],
        },
        /category a is given twice/,
      ],
      [
        {
          categories: [
            { key: "a", name: "A", price: 1 },
            { key: "b", name: "B", price: 2 },
          ],
        },
        /only one category may leave out/,
      ],
      [
        { price: 1, categories: [{ key: "Bad Key", name: "A", price: 1, rows: ["A"] }] },
        /categories\.0\.key/,
      ],
      [{ price: 1, categories: [{ key: "a", name: "A", price: 1.234, rows: ["A"] }] }, /two decimals/],
      [
        { price: 1, categories: [{ key: "a", name: "A", price: 1, rows: ["A"], colour: "red" }] },
        /categories\.0/,
      ],
      [{ categories: [] }, /categories/],
      [{}, /price: required unless categories are given/],
    ];
    for (const [body, message] of cases) {
      const answer = await create(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe("VALIDATION_FAILED");
      expect(answer.body.detail).toMatch(message);
    }
  });
});

describe("migration 0009 prices existing sessions", () => {
  it("gives every existing session one standard category at its price and every seat that price", async () => {
    // The migrations up to 0008 only, as a database created before categories existed has them.
    const folder = mkdtempSync(join(tmpdir(), "migrations-"));
    try {
      cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
      const journalPath = join(folder, "meta", "_journal.json");
      const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: { tag: string }[] };
      const upTo = journal.entries.findIndex((entry) => entry.tag.startsWith("0009"));
      writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo) }));
      const embedded = await createPgliteDatabase();
      const db = embedded.db as unknown as PgliteDatabase;
      try {
        await migrate(db, { migrationsFolder: folder });
        await embedded.db.execute(sql`
          WITH s AS (
            INSERT INTO sessions (movie_id, room, starts_at, price_cents, rows_count, seats_per_row)
            VALUES ('old', 'R', now(), 1150, 1, 2) RETURNING id)
          INSERT INTO seats (session_id, "row", "number", label, position)
          SELECT s.id, 'A', n, 'A' || n, n FROM s, generate_series(1, 2) AS n`);
        await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
        const app = createTestApp(embedded.db);
        const [old] = (await call(app, "GET", "/sessions")).body.items;
        const session = await call(app, "GET", `/sessions/${old.id}`);
        expect(session.body.categories).toEqual([{ key: "standard", name: "Standard", price: 11.5 }]);
        expect(session.body.seats.map((seat: Seat) => seat.category)).toEqual(["standard", "standard"]);
        const held = await hold(
          app,
          "carol",
          session.body.seats.map((seat: Seat) => seat.id),
        );
        expect(held.body.totalPrice).toBe(23);
      } finally {
        await embedded.close();
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
