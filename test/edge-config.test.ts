import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../src/db/migrate-node.ts";
import { usesNeonServerless } from "../src/entry/edge.ts";
import worker from "../src/entry/worker.ts";
import { ConfigError, parseEnv } from "../src/env.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { serviceUrl } from "./support/services.ts";

const QSTASH = {
  QSTASH_TOKEN: "token",
  QSTASH_CURRENT_SIGNING_KEY: "sig_current",
  QSTASH_NEXT_SIGNING_KEY: "sig_next",
  PUBLIC_BASE_URL: "https://seats.example.com/",
};

describe("edge configuration", () => {
  it("turns QStash on with QSTASH_TOKEN and then names each missing companion variable", () => {
    expect(parseEnv({}).qstash).toBeUndefined();
    expect(parseEnv(QSTASH).qstash).toEqual({
      url: "https://qstash.upstash.io",
      token: "token",
      currentSigningKey: "sig_current",
      nextSigningKey: "sig_next",
      publicBaseUrl: "https://seats.example.com",
    });
    for (const missing of ["QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY", "PUBLIC_BASE_URL"]) {
      expect(() => parseEnv({ ...QSTASH, [missing]: "" })).toThrow(
        new RegExp(`^Invalid configuration: ${missing}:`),
      );
    }
    expect(() => parseEnv({ ...QSTASH, PUBLIC_BASE_URL: "seats" })).toThrow(/PUBLIC_BASE_URL/);
  });

  it("picks neon-serverless for Neon hosts and a configured proxy, pg over TCP otherwise", () => {
    const neon = parseEnv({ DATABASE_URL: "postgres://u:p@ep-cool-1.eu-central-1.aws.neon.tech/db" });
    expect(usesNeonServerless(neon)).toBe(true);
    const proxied = parseEnv({
      DATABASE_URL: "postgres://db:5432/x",
      NEON_WEBSOCKET_PROXY: "ws://127.0.0.1:4444/v1",
    });
    expect(usesNeonServerless(proxied)).toBe(true);
    expect(usesNeonServerless(parseEnv({ DATABASE_URL: "postgres://db.internal:5432/x" }))).toBe(false);
    expect(() => parseEnv({ NEON_WEBSOCKET_PROXY: "http://proxy" })).toThrow(/NEON_WEBSOCKET_PROXY/);
    expect(() => usesNeonServerless(parseEnv({}))).toThrow(ConfigError);
  });
});

const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("the Worker's fetch and scheduled handlers, run in-process", () => {
  let url: string;
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (promise: Promise<unknown>) => void pending.push(promise) };

  beforeAll(async () => {
    url = await createScratchDatabase(adminUrl as string);
    await migratePostgres(url);
  });
  afterAll(() => dropScratchDatabase(adminUrl as string, url));

  it("answers every request of a misconfigured Worker with a problem naming the variable", async () => {
    const response = await worker.fetch(new Request("http://worker/health"), { LOG_LEVEL: "silent" }, ctx);
    expect(response.status).toBe(500);
    expect((await response.json()).detail).toMatch(/^Invalid configuration: DATABASE_URL:/);
  });

  it("serves a request on its own pool, closed after the response, and sweeps on the cron", async () => {
    const env = { DATABASE_URL: url, LOG_LEVEL: "silent", RESERVATION_TTL_SECONDS: "1" };
    const created = await worker.fetch(
      new Request("http://worker/sessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          movieId: "m",
          room: "r",
          startsAt: "2026-12-24T20:00:00Z",
          price: 5,
          rowsCount: 1,
          seatsPerRow: 1,
        }),
      }),
      env,
      ctx,
    );
    expect(created.status).toBe(201);
    expect(pending).toHaveLength(1);
    await Promise.all(pending.splice(0));
    await expect(
      worker.scheduled({ cron: "* * * * *", scheduledTime: Date.now() }, env),
    ).resolves.toBeUndefined();
  });
});
