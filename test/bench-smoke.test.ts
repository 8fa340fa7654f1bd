import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serviceUrl } from "./support/services.ts";

/**
 * `npm run bench` at smoke size (BENCH_SMOKE=1: a few dozen requests a scenario), so the bench
 * cannot rot: it must start the service, measure both ceilings, run every scenario and find every
 * invariant holding in the rows. Its timings are never asserted; they mean nothing at this size.
 */

const adminUrl = serviceUrl("TEST_DATABASE_URL");
const redisUrl = serviceUrl("TEST_REDIS_URL");

type Report = {
  results: { name: string; rate: number; checks: { name: string; ok: boolean; detail: string }[] }[];
  ceilings: { http: { rate: number }; database: { rate: number } };
  failed: string[];
};

function runBench(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe.skipIf(!adminUrl || !redisUrl)("npm run bench, smoke-sized", () => {
  it("runs every scenario against a real server process and every invariant holds", {
    timeout: 180_000,
  }, async () => {
    const json = join(mkdtempSync(join(tmpdir(), "bench-smoke-")), "bench.json");
    const { code, output } = await runBench({
      BENCH_SMOKE: "1",
      BENCH_ADMIN_URL: adminUrl as string,
      BENCH_REDIS_URL: redisUrl as string,
      BENCH_JSON: json,
    });
    expect(code, output).toBe(0);

    const report = JSON.parse(readFileSync(json, "utf8")) as Report;
    expect(report.results.map((result) => result.name)).toEqual([
      "spread",
      "hot",
      "pay",
      "flow",
      "scale-1k",
      "scale-10k",
      "history",
    ]);
    for (const result of report.results) {
      expect(result.checks.length).toBeGreaterThan(0);
      for (const check of result.checks)
        expect(check.ok, `${result.name}: ${check.name}: ${check.detail}`).toBe(true);
      expect(result.rate).toBeGreaterThan(0);
    }
    expect(report.ceilings.http.rate).toBeGreaterThan(0);
    expect(report.ceilings.database.rate).toBeGreaterThan(0);
    expect(report.failed).toEqual([]);
    expect(output).toContain("## Targets");
  });
});
