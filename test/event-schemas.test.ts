import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { expireAllOverdueHolds } from "../src/booking/expire.ts";
import { queryRows } from "../src/db/database.ts";
import { eventProblems } from "../src/events/types.ts";
import { call, createSessionVia, hold, invalidOutboxRows, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

/**
 * Every event the service writes parses against its type's schema: here every writer runs once
 * (a hold alone and in a batch, with a key, a payment, a cancellation, an expiry) and every
 * outbox row is parsed. (Every suite on `useTestApp` makes the same check on its own rows.)
 */
const WRITTEN_HERE = [
  "payment.confirmed",
  "reservation.cancelled",
  "reservation.created",
  "reservation.expired",
  "seat.released",
];

describe.each(availableDrivers())("event payloads on %s", (driver) => {
  const suite = useTestApp(driver, { overrides: { reservationTtlSeconds: 1 } });

  it("every outbox row written by every writer matches its type's schema", async () => {
    const { seatIds } = await createSessionVia(suite.app);
    const [a, b, c, d, ...rest] = seatIds as string[];
    const paid = await hold(suite.app, "payer", [a as string, b as string], { "idempotency-key": "e-1" });
    expect(paid.status).toBe(201);
    expect((await call(suite.app, "POST", `/reservations/${paid.body.id}/pay`, {})).status).toBe(200);
    const cancelled = await hold(suite.app, "canceller", [c as string]);
    expect((await call(suite.app, "POST", `/reservations/${cancelled.body.id}/cancel`, {})).status).toBe(200);
    const crowd = await Promise.all(
      rest.slice(0, 10).map((seat, i) => hold(suite.app, `crowd-${i}`, [seat])),
    );
    expect(crowd.every((answer) => answer.status === 201)).toBe(true);
    expect((await hold(suite.app, "late", [d as string])).status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await expireAllOverdueHolds(suite.database.db)).toBeGreaterThan(0);

    const types = await queryRows<{ type: string }>(
      suite.database.db,
      sql`SELECT DISTINCT type FROM outbox ORDER BY type`,
    );
    expect(types.map((row) => row.type)).toEqual(expect.arrayContaining(WRITTEN_HERE));
    expect(await invalidOutboxRows(suite.database.db)).toEqual([]);
  });
});

describe("event schemas", () => {
  const created = {
    reservationId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    userId: "u",
    seatIds: [crypto.randomUUID()],
    totalPrice: 12.5,
    expiresAt: "2026-12-01T10:00:00.000Z",
  };

  it("accept a well-formed payload", () => {
    expect(eventProblems("reservation.created", created)).toEqual([]);
  });

  it("name what is missing, extra, malformed, or of an unknown type", () => {
    const { expiresAt: _, ...withoutTime } = created;
    expect(eventProblems("reservation.created", withoutTime)).toEqual([expect.stringContaining("expiresAt")]);
    expect(eventProblems("reservation.created", { ...created, extra: 1 }).length).toBe(1);
    expect(eventProblems("reservation.created", { ...created, seatIds: ["A1"] })).toEqual([
      expect.stringContaining("seatIds.0"),
    ]);
    expect(eventProblems("reservation.created", { ...created, expiresAt: "yesterday" }).length).toBe(1);
    expect(eventProblems("seat.sold", created)).toEqual(['unknown event type "seat.sold"']);
  });
});
