import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { findDocker } from "./service-probes.ts";
import {
  choiceOf,
  SERVICES,
  type Selection,
  type Service,
  selectServices,
  skipSummary,
} from "./service-selection.ts";

function describeSource(selection: Selection): string {
  const title = SERVICES[selection.variable].title;
  if (selection.source === "none") return `${title} none`;
  const where = new URL(selection.url).host;
  return `${title} ${where} (${selection.source === "local" ? "default local port" : "testcontainers"})`;
}

/**
 * vitest globalSetup: finds PostgreSQL, Redis and RabbitMQ once for the whole run (see
 * service-selection.ts), hands the choice to the suites (`inject("services")`) and to the processes
 * they spawn (TEST_*_URL in the environment), and at the end prints the run's skips as one line
 * and stops any container it started.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const selections = await selectServices(Object.values(SERVICES), {
    env: process.env,
    probeDocker: () => findDocker(process.env),
  });
  for (const selection of selections) {
    if (selection.source !== "none") process.env[selection.variable] = selection.url;
  }
  if (selections.some((selection) => selection.source === "local" || selection.source === "container")) {
    console.log(`services: ${selections.map(describeSource).join(", ")}`);
  }

  const skipDirectory = mkdtempSync(join(tmpdir(), "service-skips-"));
  const skipLog = join(skipDirectory, "skips.jsonl");
  writeFileSync(skipLog, "");
  project.provide("services", selections.map(choiceOf));
  project.provide("serviceSkipLog", skipLog);

  return async () => {
    const skipped = readFileSync(skipLog, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { variable: Service; file: string });
    rmSync(skipDirectory, { recursive: true, force: true });
    if (skipped.length > 0) console.log(skipSummary(skipped, selections));
    await Promise.all(
      selections.map((selection) => (selection.source === "container" ? selection.stop() : undefined)),
    );
  };
}
