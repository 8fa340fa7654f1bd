import { afterAll, describe, expect, it } from "vitest";
import { createNodePostgresDatabase } from "../src/db/node-postgres.ts";
import { call, createTestApp } from "./support/app.ts";
import { freePort } from "./support/server-process.ts";

describe("with the database unreachable", async () => {
  const closedPort = await freePort();
  const { db, close } = createNodePostgresDatabase(`postgres://postgres@127.0.0.1:${closedPort}/none`, 2);
  const app = createTestApp(db);
  afterAll(close);

  it.each([
    ["POST", "/reservations", { userId: "u", seatIds: [crypto.randomUUID()] }],
    ["POST", `/reservations/${crypto.randomUUID()}/pay`, {}],
    ["GET", `/sessions/${crypto.randomUUID()}`, undefined],
  ])("%s %s answers 503 with Retry-After, not 500", async (method, path, body) => {
    const response = await call(app, method, path, body);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(response.body).toMatchObject({ code: "SERVICE_UNAVAILABLE", status: 503 });
  });
});
