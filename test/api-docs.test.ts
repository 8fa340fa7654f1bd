import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import packageJson from "../package.json" with { type: "json" };
import { assetText, GENERATED_PATH, generatedModule } from "../scripts/swagger-ui-assets.ts";
import { swaggerUi } from "../src/routes/docs/swagger-ui-assets.ts";
import { useTestApp } from "./support/app.ts";
import { chromiumAvailable, launchChromium } from "./support/browser.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";

describe("Swagger UI's assets", () => {
  it("come from the pinned swagger-ui-dist, and the bundled copy is that version's", () => {
    const pinned = packageJson.devDependencies["swagger-ui-dist"];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(swaggerUi.version).toBe(pinned);
    // Fails after a swagger-ui-dist upgrade until `npm run swagger-ui:assets` regenerates the module.
    expect(readFileSync(GENERATED_PATH, "utf8") === generatedModule()).toBe(true);
  });
});

describe("GET /api-docs", () => {
  const suite = useTestApp("pglite");
  const base = `/api-docs/${swaggerUi.version}`;

  it("is a page whose styles and scripts are all served by the app itself", async () => {
    const response = await suite.app.request("/api-docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    const references = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(references).toEqual([`${base}/swagger-ui.css`, `${base}/swagger-ui-bundle.js`, `${base}/init.js`]);
  });

  it.each([
    ["swagger-ui.css", "text/css", assetText("swagger-ui.css")],
    ["swagger-ui-bundle.js", "text/javascript", assetText("swagger-ui-bundle.js")],
  ])("serves %s from the package, cacheable for good", async (file, type, content) => {
    const response = await suite.app.request(`${base}/${file}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain(type);
    expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await response.text()) === content).toBe(true);
  });

  it("answers 404 problems for another version or an unknown file", async () => {
    for (const path of ["/api-docs/0.0.1/swagger-ui.css", `${base}/swagger-ui.js.map`]) {
      const response = await suite.app.request(path);
      expect(response.status).toBe(404);
      expect((await response.json()).code).toBe("NOT_FOUND");
    }
  });
});

// The real `npm start` process and Debian's chromium with every request not to that server refused:
// the page must render the operations from what the app serves alone.
const needsBrowser = !chromiumAvailable() && process.env.CI !== "true";

describe.skipIf(needsBrowser)("Swagger UI in a browser with the network off", () => {
  let server: ServerProcess;
  let browser: Browser;
  const dataDir = mkdtempSync(join(tmpdir(), "api-docs-"));

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess({ DATA_DIR: dataDir }), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("renders every operation of /openapi.json", { timeout: 60_000 }, async () => {
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.length).toBeGreaterThan(10);

    const page = await browser.newPage();
    const refused: string[] = [];
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${server.url}/`)) return route.continue();
      refused.push(url);
      return route.abort("internetdisconnected");
    });

    await page.goto(`${server.url}/api-docs`);
    await page.locator(".opblock").first().waitFor({ timeout: 30_000 });
    const rendered = await page
      .locator(".opblock-summary")
      .evaluateAll((blocks) =>
        blocks.map(
          (block) =>
            `${block.querySelector(".opblock-summary-method")?.textContent} ${block.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`,
        ),
      );

    expect(rendered.sort()).toEqual(operations.sort());
    expect(await page.locator(".info .title").textContent()).toContain("Seat reservation API");
    expect(refused).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
