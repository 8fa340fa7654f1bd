import { appendFileSync } from "node:fs";
import { relative } from "node:path";
import { expect, inject } from "vitest";
import { type Service, type ServiceChoice, urlOrSkip } from "./service-selection.ts";

export type { Service };

declare module "vitest" {
  export interface ProvidedContext {
    /** Set by test/support/services-setup.ts (globalSetup): where each real service is, or why none. */
    services: ServiceChoice[];
    /** A file the workers append their skips to; the globalSetup prints them as one line at the end. */
    serviceSkipLog: string;
  }
}

/**
 * The URL of a real service for the calling suite, or undefined: the suite skips (its file is
 * named in the run's one summary line) and, under CI=true, fails instead. The run's globalSetup
 * chose the URL: TEST_*_URL, else the default local port, else a testcontainers container.
 */
export function serviceUrl(service: Service): string | undefined {
  const choice = inject("services").find((candidate) => candidate.variable === service);
  if (!choice) throw new Error(`no service selection for ${service}: is services-setup.ts a globalSetup?`);
  return urlOrSkip(choice, process.env, () => {
    const file = relative(process.cwd(), expect.getState().testPath ?? "an unknown file");
    appendFileSync(inject("serviceSkipLog"), `${JSON.stringify({ variable: service, file })}\n`);
  });
}
