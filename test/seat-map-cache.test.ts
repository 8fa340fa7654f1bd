import { describe, expect, it } from "vitest";
import { call, createSessionVia, hold, useTestApp } from "./support/app.ts";
import { availableDrivers } from "./support/database.ts";

describe.each(availableDrivers())("CDN-friendly seat maps on %s", (driver) => {
  const suite = useTestApp(driver);

  for (const path of ["", "/seats"]) {
    it(`GET /sessions/:id${path} carries an ETag, a one-second Cache-Control and answers 304 while unchanged`, async () => {
      const { session } = await createSessionVia(suite.app);
      const first = await call(suite.app, "GET", `/sessions/${session.id}${path}`);
      expect(first.status).toBe(200);
      const etag = first.headers.get("etag");
      expect(etag).toMatch(/^"[0-9a-f]{24}"$/);
      expect(first.headers.get("cache-control")).toBe("public, max-age=0, s-maxage=1");

      const again = await suite.app.request(`/sessions/${session.id}${path}`, {
        headers: { "if-none-match": etag as string },
      });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe("");
      expect(again.headers.get("etag")).toBe(etag);
      expect(again.headers.get("cache-control")).toBe("public, max-age=0, s-maxage=1");

      const listed = await suite.app.request(`/sessions/${session.id}${path}`, {
        headers: { "if-none-match": `"other", W/${etag}` },
      });
      expect(listed.status).toBe(304);
    });
  }

  it("the light map has only ids and statuses, and the same version as the full map", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    await hold(suite.app, "alice", [seatIds[3] as string]);
    const light = await call(suite.app, "GET", `/sessions/${session.id}/seats`);
    const full = await call(suite.app, "GET", `/sessions/${session.id}`);
    expect(light.headers.get("etag")).toBe(full.headers.get("etag"));
    expect(light.body.sessionId).toBe(session.id);
    expect(light.body.counts).toEqual({ total: 40, available: 39, held: 1, sold: 0 });
    expect(light.body.seats).toHaveLength(40);
    expect(light.body.seats[3]).toEqual({ id: seatIds[3], status: "HELD" });
    expect(Object.keys(light.body.seats[0]).sort()).toEqual(["id", "status"]);
  });

  it("every seat change gives a new ETag: hold, payment, cancellation", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const tagNow = async () =>
      (await call(suite.app, "GET", `/sessions/${session.id}/seats`)).headers.get("etag") as string;
    const empty = await tagNow();
    const held = await hold(suite.app, "bob", [seatIds[0] as string, seatIds[1] as string]);
    const afterHold = await tagNow();
    expect(afterHold).not.toBe(empty);
    const stale = await suite.app.request(`/sessions/${session.id}/seats`, {
      headers: { "if-none-match": empty },
    });
    expect(stale.status).toBe(200);

    await call(suite.app, "POST", `/reservations/${held.body.id}/pay`);
    const afterPay = await tagNow();
    expect(new Set([empty, afterHold, afterPay]).size).toBe(3);

    const other = await hold(suite.app, "carol", [seatIds[5] as string]);
    const afterSecondHold = await tagNow();
    await call(suite.app, "POST", `/reservations/${other.body.id}/cancel`);
    const afterCancel = await tagNow();
    expect(afterSecondHold).not.toBe(afterPay);
    // The version is the statuses' digest: the map after the cancellation is the map after the payment.
    expect(afterCancel).toBe(afterPay);
  });

  it("an unknown session is 404 and a malformed id 400, not 304", async () => {
    const unknown = await call(suite.app, "GET", `/sessions/${crypto.randomUUID()}/seats`, undefined, {
      "if-none-match": "*",
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("SESSION_NOT_FOUND");
    expect((await call(suite.app, "GET", "/sessions/nope/seats")).status).toBe(400);
  });
});

describe.each(availableDrivers())("seat map versions and expiry on %s", (driver) => {
  const suite = useTestApp(driver, { overrides: { reservationTtlSeconds: 1 } });

  it("a hold running out changes the ETag with no write at all (no sweeper runs here)", async () => {
    const { session, seatIds } = await createSessionVia(suite.app);
    const empty = (await call(suite.app, "GET", `/sessions/${session.id}/seats`)).headers.get("etag");
    await hold(suite.app, "dave", [seatIds[0] as string]);
    const held = await call(suite.app, "GET", `/sessions/${session.id}/seats`);
    expect(held.headers.get("etag")).not.toBe(empty);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const later = await call(suite.app, "GET", `/sessions/${session.id}/seats`);
    expect(later.body.counts.held).toBe(0);
    expect(later.headers.get("etag")).toBe(empty);
  });
});
