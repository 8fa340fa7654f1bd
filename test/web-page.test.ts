import { mkdirSync, readFileSync } from "node:fs";
import { type ServerType, serve } from "@hono/node-server";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENERATED_PATH, generatedModule } from "../scripts/web-assets.ts";
import { webAssets } from "../src/routes/web/web-assets.ts";
import { createTestApp, useTestApp } from "./support/app.ts";
import { chromiumAvailable, launchChromium } from "./support/browser.ts";
import { availableDrivers, openTestDatabase, type TestDatabase } from "./support/database.ts";
import { freePort, type ServerProcess, startServerProcess } from "./support/server-process.ts";

const ARTIFACTS = "test-results";

describe("the web page, served by the app", () => {
  const suite = useTestApp("pglite");

  it("GET / is the page, with a strict CSP and its one script, bundled at build time and up to date", async () => {
    const page = await suite.app.request("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain(`<script src="/app.js?v=${webAssets.version}" defer></script>`);
    expect(html).not.toMatch(/https?:\/\//);
    for (const id of ["token", "user", "best-quantity", "best-category", "new-movie", "new-categories"]) {
      expect(html).toContain(`<label for="${id}"`);
    }
    const script = await suite.app.request(`/app.js?v=${webAssets.version}`);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toContain("immutable");
    expect(await script.text()).toBe(webAssets.script);
    expect(readFileSync(GENERATED_PATH, "utf8")).toBe(await generatedModule());
  });
});

describe.skipIf(!chromiumAvailable() || !availableDrivers().includes("postgres"))(
  "the web page in a real browser, on two server processes",
  () => {
    let database: TestDatabase;
    let a: ServerProcess;
    let b: ServerProcess;
    let browser: Browser;
    beforeAll(async () => {
      database = await openTestDatabase("postgres", 2);
      const env = { DATABASE_URL: database.url as string };
      [a, b, browser] = await Promise.all([
        startServerProcess(env),
        startServerProcess(env),
        launchChromium(),
      ]);
      mkdirSync(ARTIFACTS, { recursive: true });
    }, 90_000);
    afterAll(async () => {
      await browser?.close();
      await Promise.all([a?.stop(), b?.stop()]);
      await database?.close();
    });

    const seat = (page: Page, label: string) => page.locator(`[data-label="${label}"]`);

    it("holds seats on instance A, sees them turn held on instance B within a second, pays, extends, cancels", async () => {
      const created = await fetch(`${a.url}/sessions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          movieId: "browser-test",
          room: "Room 7",
          startsAt: "2026-12-24T20:00:00Z",
          price: 10,
          rowsCount: 5,
          seatsPerRow: 8,
          categories: [{ key: "premium", name: "Premium", price: 15, rows: ["C"] }],
        }),
      });
      const session = (await created.json()) as { id: string };
      const [buyer, watcher] = await Promise.all([browser.newPage(), browser.newPage()]);
      const failures: string[] = [];
      for (const page of [buyer, watcher]) page.on("pageerror", (error) => failures.push(error.message));
      await buyer.goto(`${a.url}/?session=${session.id}`);
      await watcher.goto(`${b.url}/?session=${session.id}`);
      await expect.poll(() => watcher.locator("#live").textContent()).toBe("Live updates: on");
      expect(await seat(watcher, "C1").getAttribute("aria-label")).toBe("C1, Premium 15.00, available");

      // Seats are buttons: chosen with the keyboard as well as the mouse.
      await seat(buyer, "A4").focus();
      await buyer.keyboard.press("Enter");
      expect(await seat(buyer, "A4").getAttribute("aria-pressed")).toBe("true");
      await seat(buyer, "A5").click();
      const holding = buyer.waitForResponse(
        (r) => r.url().endsWith("/reservations") && r.request().method() === "POST",
      );
      await buyer.getByRole("button", { name: "Hold selected seats" }).click();
      expect((await holding).status()).toBe(201);
      const heldAt = Date.now();
      // The bound: instance B's page shows instance A's hold within one second.
      await watcher.locator('[data-label="A4"][data-status="HELD"]').waitFor({ timeout: 1_000 });
      await watcher.locator('[data-label="A5"][data-status="HELD"]').waitFor({ timeout: 1_000 });
      console.info(
        `the other instance's page showed the hold ${Date.now() - heldAt} ms after it was answered`,
      );
      expect(await buyer.locator("#hold-summary").textContent()).toBe("PENDING: A4, A5, total 20.00");
      expect(await buyer.locator("#countdown").textContent()).toMatch(/^\d+ s left$/);

      await buyer.getByRole("button", { name: "Extend by 2 minutes" }).click();
      await expect.poll(() => buyer.locator("#status").textContent()).toMatch(/^Extended until/);
      await buyer.getByRole("button", { name: "Pay" }).click();
      await watcher.locator('[data-label="A4"][data-status="SOLD"]').waitFor({ timeout: 2_000 });
      expect(await buyer.locator("#status").textContent()).toBe("Paid 20.00: the seats are yours.");

      // Best available in a category, then given back: the other page sees both.
      await buyer.locator("#best-quantity").fill("2");
      await buyer.locator("#best-category").selectOption("premium");
      await buyer.getByRole("button", { name: "Hold best" }).click();
      await watcher.locator('[data-label="C4"][data-status="HELD"]').waitFor({ timeout: 2_000 });
      expect(await buyer.locator("#hold-summary").textContent()).toBe("PENDING: C4, C5, total 30.00");
      await buyer.screenshot({ path: `${ARTIFACTS}/web-page-buyer.png`, fullPage: true });
      await watcher.screenshot({ path: `${ARTIFACTS}/web-page-watcher.png`, fullPage: true });
      await buyer.getByRole("button", { name: "Cancel" }).click();
      await watcher.locator('[data-label="C4"][data-status="AVAILABLE"]').waitFor({ timeout: 2_000 });
      expect(failures).toEqual([]);
    }, 60_000);

    it("an organiser creates a session with categories from the page", async () => {
      const page = await browser.newPage();
      await page.goto(a.url);
      await page.locator("#new-movie").fill("made-in-browser");
      await page.locator("#new-rows").fill("3");
      await page.locator("#new-seats").fill("4");
      await page.locator("#new-categories").fill("front, Front row, 20, A");
      await page.getByRole("button", { name: "Create session" }).click();
      await expect
        .poll(() => page.locator("#status").textContent())
        .toBe("Created session made-in-browser with 12 seats.");
      expect(await seat(page, "A1").getAttribute("aria-label")).toBe("A1, Front row 20.00, available");
      expect(await seat(page, "B1").getAttribute("aria-label")).toBe("B1, Standard 12.50, available");
    }, 30_000);
  },
);

describe.skipIf(!chromiumAvailable())("the web page where no stream is served (as on Workers)", () => {
  let database: TestDatabase;
  let server: ServerType;
  let url: string;
  let browser: Browser;
  beforeAll(async () => {
    database = await openTestDatabase("pglite");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // No seat-change hints: GET /sessions/:id/stream answers 501, as it does on Workers.
    server = serve({ fetch: createTestApp(database.db).fetch, port, hostname: "127.0.0.1" });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await database?.close();
  });

  it("falls back to polling the light seat map with its ETag, and still shows another buyer's hold", async () => {
    const created = await fetch(`${url}/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        movieId: "no-stream",
        room: "R",
        startsAt: "2026-12-24T20:00:00Z",
        price: 9,
        rowsCount: 2,
        seatsPerRow: 4,
      }),
    });
    const session = (await created.json()) as { id: string; seats: { id: string; label: string }[] };
    const page = await browser.newPage();
    const polls: number[] = [];
    page.on("response", (response) => {
      if (response.url().endsWith(`/sessions/${session.id}/seats`)) polls.push(response.status());
    });
    await page.goto(`${url}/?session=${session.id}`);
    await expect.poll(() => page.locator("#live").textContent()).toBe("Live updates: polling every second");
    const held = await fetch(`${url}/reservations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: "someone", seatIds: [session.seats[1]?.id] }),
    });
    expect(held.status).toBe(201);
    await page.locator('[data-label="A2"][data-status="HELD"]').waitFor({ timeout: 5_000 });
    await expect.poll(() => polls.includes(304), { timeout: 5_000 }).toBe(true);
    expect(polls).toContain(200);
  }, 30_000);
});
