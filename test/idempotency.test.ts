import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db/database.ts";
import { call, createSessionVia, hold, SESSION, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

describe.each(availableDrivers())("Idempotency-Key on %s", (driver) => {
  const suite = useTestApp(driver);
  let seatIds: string[];

  beforeAll(async () => {
    ({ seatIds } = await createSessionVia(suite.app));
  });

  const reservationsOf = async (userId: string) =>
    (
      await queryRows<{ n: number }>(
        suite.database.db,
        sql`SELECT count(*)::int AS n FROM reservations WHERE user_id = ${userId}`,
      )
    )[0]?.n;

  it("replays the first response for the same key and body", async () => {
    const key = { "idempotency-key": "hold-1" };
    const first = await hold(suite.app, "idem-a", [seatIds[0] as string], key);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const replay = await hold(suite.app, "idem-a", [seatIds[0] as string], key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(first.body);
    expect(await reservationsOf("idem-a")).toBe(1);
  });

  it("answers 422 for the same key with another body, and changes nothing", async () => {
    const key = { "idempotency-key": "hold-2" };
    expect((await hold(suite.app, "idem-b", [seatIds[1] as string], key)).status).toBe(201);
    const other = await hold(suite.app, "idem-b", [seatIds[2] as string], key);
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await reservationsOf("idem-b")).toBe(1);
  });

  it("scopes keys to the user", async () => {
    const key = { "idempotency-key": "shared-key" };
    expect((await hold(suite.app, "idem-c", [seatIds[3] as string], key)).status).toBe(201);
    const otherUser = await hold(suite.app, "idem-d", [seatIds[4] as string], key);
    expect(otherUser.status).toBe(201);
    expect(otherUser.headers.get("idempotent-replayed")).toBeNull();
  });

  it("does not remember a refusal: the same key can be retried after a conflict", async () => {
    expect((await hold(suite.app, "idem-e", [seatIds[5] as string])).status).toBe(201);
    const key = { "idempotency-key": "after-conflict" };
    expect((await hold(suite.app, "idem-f", [seatIds[5] as string], key)).status).toBe(409);
    expect((await hold(suite.app, "idem-f", [seatIds[6] as string], key)).status).toBe(201);
  });

  it("replays a payment with its sale", async () => {
    const held = await hold(suite.app, "idem-g", [seatIds[7] as string]);
    const key = { "idempotency-key": "pay-1" };
    const paid = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, {}, key);
    const replay = await call(suite.app, "POST", `/reservations/${held.body.id}/pay`, {}, key);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(paid.body);
    const other = await call(
      suite.app,
      "POST",
      `/reservations/${held.body.id}/pay`,
      { userId: "idem-g" },
      key,
    );
    expect(other.status).toBe(422);
  });

  it("rejects a malformed key", async () => {
    const response = await hold(suite.app, "idem-h", [seatIds[8] as string], {
      "idempotency-key": "has space",
    });
    expect(response.status).toBe(400);
    expect(await reservationsOf("idem-h")).toBe(0);
  });

  it("makes one reservation from concurrent requests with one key", async () => {
    const key = { "idempotency-key": "race" };
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        hold(suite.app, "idem-race", [seatIds[9] as string, seatIds[10] as string], key),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.every((status) => status === 201 || status === 409)).toBe(true);
    const created = responses.filter((response) => response.status === 201);
    expect(new Set(created.map((response) => response.body.id)).size).toBe(1);
    for (const refused of responses.filter((response) => response.status === 409)) {
      expect(refused.body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    }
    expect(await reservationsOf("idem-race")).toBe(1);
  });

  it("replays a retry that spells the seat ids in upper case", async () => {
    const key = { "idempotency-key": "hold-case" };
    const ids = [seatIds[15] as string, seatIds[16] as string];
    const first = await hold(suite.app, "idem-l", ids, key);
    expect(first.status).toBe(201);
    const upper = await hold(
      suite.app,
      "idem-l",
      ids.map((id) => id.toUpperCase()),
      key,
    );
    expect(upper.status).toBe(201);
    expect(upper.headers.get("idempotent-replayed")).toBe("true");
    expect(upper.body).toEqual(first.body);
    expect(await reservationsOf("idem-l")).toBe(1);
  });

  it("replays a best-available retry whose session id is in upper case", async () => {
    const sessionId = (await createSessionVia(suite.app, { rowsCount: 1, seatsPerRow: 4 })).session.id;
    const key = { "idempotency-key": "best-case" };
    const body = (sessionId: string) => ({ userId: "idem-m", sessionId, quantity: 1 });
    const first = await call(suite.app, "POST", "/reservations", body(sessionId), key);
    expect(first.status).toBe(201);
    const upper = await call(suite.app, "POST", "/reservations", body(sessionId.toUpperCase()), key);
    expect(upper.status).toBe(201);
    expect(upper.headers.get("idempotent-replayed")).toBe("true");
    expect(await reservationsOf("idem-m")).toBe(1);
  });

  it("replays a retried cancel instead of judging the cancelled hold again", async () => {
    const held = await hold(suite.app, "idem-i", [seatIds[11] as string]);
    const key = { "idempotency-key": "cancel-1" };
    const path = `/reservations/${held.body.id}/cancel`;
    const cancelled = await call(suite.app, "POST", path, {}, key);
    expect(cancelled.status).toBe(200);
    expect(cancelled.headers.get("idempotent-replayed")).toBeNull();
    const replay = await call(suite.app, "POST", path, {}, key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(cancelled.body);
    const other = await call(suite.app, "POST", path, { userId: "idem-i" }, key);
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  it("cancels once from concurrent cancels with one key: the others replay it or wait their turn", async () => {
    const held = await hold(suite.app, "idem-n", [seatIds[17] as string]);
    const key = { "idempotency-key": "cancel-race" };
    const path = `/reservations/${held.body.id}/cancel`;
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => call(suite.app, "POST", path, {}, key)),
    );
    for (const response of responses) {
      if (response.status === 409) expect(response.body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
      else expect(response.status).toBe(200);
    }
    const answered = responses.filter((response) => response.status === 200);
    expect(answered.filter((response) => response.headers.get("idempotent-replayed") === null)).toHaveLength(
      1,
    );
    for (const response of answered) expect(response.body).toEqual(answered[0]?.body);
    const events = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM outbox WHERE type = 'reservation.cancelled'
          AND aggregate_id = ${held.body.id}::uuid`,
    );
    expect(events[0]?.n).toBe(1);
  });

  it("keeps a cancel key to its reservation", async () => {
    const first = await hold(suite.app, "idem-j", [seatIds[12] as string]);
    const second = await hold(suite.app, "idem-j", [seatIds[13] as string]);
    const key = { "idempotency-key": "cancel-2" };
    expect((await call(suite.app, "POST", `/reservations/${first.body.id}/cancel`, {}, key)).status).toBe(
      200,
    );
    const other = await call(suite.app, "POST", `/reservations/${second.body.id}/cancel`, {}, key);
    expect(other.status).toBe(200);
    expect(other.headers.get("idempotent-replayed")).toBeNull();
    expect(other.body).toMatchObject({ id: second.body.id, status: "CANCELLED" });
  });

  it("replays a retried extension instead of extending again", async () => {
    const held = await hold(suite.app, "idem-k", [seatIds[14] as string]);
    const key = { "idempotency-key": "extend-1" };
    const path = `/reservations/${held.body.id}/extend`;
    const extended = await call(suite.app, "POST", path, { seconds: 60 }, key);
    expect(extended.status).toBe(200);
    expect(extended.headers.get("idempotent-replayed")).toBeNull();
    const replay = await call(suite.app, "POST", path, { seconds: 60 }, key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(extended.body);
    const events = await queryRows<{ n: number }>(
      suite.database.db,
      sql`SELECT count(*)::int AS n FROM outbox WHERE type = 'reservation.extended'
          AND aggregate_id = ${held.body.id}::uuid`,
    );
    expect(events[0]?.n).toBe(1);
    const other = await call(suite.app, "POST", path, { seconds: 90 }, key);
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  it("makes one session of a retried POST /sessions, and refuses the key with another body", async () => {
    const sessionsNamed = async (movieId: string) =>
      (
        await queryRows<{ n: number }>(
          suite.database.db,
          sql`SELECT count(*)::int AS n FROM sessions WHERE movie_id = ${movieId}`,
        )
      )[0]?.n;
    const body = { ...SESSION, movieId: "idem-session", rowsCount: 2, seatsPerRow: 3 };
    const key = { "idempotency-key": "session-1" };
    const first = await call(suite.app, "POST", "/sessions", body, key);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const replay = await call(suite.app, "POST", "/sessions", body, key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(first.body);
    const sameInstant = { ...body, startsAt: "2026-12-24T21:00:00+01:00" };
    const respelled = await call(suite.app, "POST", "/sessions", sameInstant, key);
    expect(respelled.status).toBe(201);
    expect(respelled.headers.get("idempotent-replayed")).toBe("true");
    const other = await call(suite.app, "POST", "/sessions", { ...body, room: "Room 2" }, key);
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await sessionsNamed("idem-session")).toBe(1);
  });
});
