import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SESSION } from "./support/app.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { runServerToExit, type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { serviceUrl } from "./support/services.ts";

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  return { status: response.status, body: (await response.json()) as any };
};

describe("npm start (the Node entry point)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "seats-embedded-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("serves the whole flow on the embedded database and keeps it across a restart", async () => {
    let server: ServerProcess = await startServerProcess({ DATA_DIR: dataDir });
    let saleId: string;
    try {
      const session = await post(`${server.url}/sessions`, SESSION);
      expect(session.status).toBe(201);
      const held = await post(`${server.url}/reservations`, {
        userId: "restart",
        seatIds: [session.body.seats[0].id],
      });
      expect(held.status).toBe(201);
      const paid = await post(`${server.url}/reservations/${held.body.id}/pay`, {});
      expect(paid.status).toBe(200);
      saleId = paid.body.sale.id;
      expect((await fetch(`${server.url}/api-docs`)).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      const history = await (await fetch(`${server.url}/sales/history/restart`)).json();
      expect(history).toEqual([expect.objectContaining({ saleId, seats: ["A1"] })]);
    } finally {
      await server.stop();
    }
  });

  it("refuses to start on invalid configuration, naming the variable", async () => {
    const result = await runServerToExit({ RESERVATION_TTL_SECONDS: "soon", DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.output).toContain("RESERVATION_TTL_SECONDS");
  });
});

const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("instances starting together on one PostgreSQL", () => {
  it("migrate once under a lock and all serve", async () => {
    const url = await createScratchDatabase(adminUrl as string);
    const servers = await Promise.all(
      [1, 2, 3].map(() => startServerProcess({ DATABASE_URL: url, EXPIRY_SWEEP_INTERVAL_MS: "200" })),
    );
    try {
      const session = await post(`${servers[0]?.url}/sessions`, SESSION);
      const seat = session.body.seats[0].id;
      const results = await Promise.all(
        servers.map((server, index) =>
          post(`${server.url}/reservations`, { userId: `u${index}`, seatIds: [seat] }),
        ),
      );
      expect(results.map((result) => result.status).sort()).toEqual([201, 409, 409]);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await dropScratchDatabase(adminUrl as string, url);
    }
  });
});
