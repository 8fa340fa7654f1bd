import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

/**
 * The promise of DESIGN.md: `createApp` runs unchanged on Node, Deno, Bun and Workers because
 * everything below the entry points uses Web standard APIs only. Bundling `src/app.ts` for esbuild's
 * neutral platform proves it: a `node:` import (or any Node built-in, in our code or a dependency
 * it pulls in) fails the build, and the output must not touch `process`.
 */
const NODE_ONLY_PACKAGES = [
  "pg",
  "amqplib",
  "prom-client",
  "ioredis",
  "pino",
  "ws",
  "@electric-sql/pglite",
  "@upstash/qstash",
];
const PROCESS = /\bprocess\s*[.[]|globalThis\.process/;
/**
 * Generated modules of string constants (Swagger UI's bundle as text): the browser runs that text,
 * the app never does, so they are checked on their own: data only, no import.
 */
const ASSET_MODULES = ["./swagger-ui-assets.ts"];

function bundle(packages: "bundle" | "external") {
  return build({
    entryPoints: ["src/app.ts"],
    bundle: true,
    platform: "neutral",
    format: "esm",
    packages,
    mainFields: ["module", "main"],
    conditions: ["worker", "import"],
    external: ASSET_MODULES,
    metafile: true,
    write: false,
    logLevel: "silent",
  });
}

describe("the shared core (src/app.ts and all it imports)", () => {
  it("imports no Node built-in and no Node-only package, and never reads process", async () => {
    const result = await bundle("external");
    expect(result.errors).toEqual([]);
    const imported = new Set(
      Object.values(result.metafile.outputs).flatMap((output) => output.imports.map((i) => i.path)),
    );
    const builtins = new Set(builtinModules);
    for (const asset of ASSET_MODULES) imported.delete(asset);
    const nodeOnly = [...imported].filter(
      (path) =>
        path.startsWith("node:") ||
        builtins.has(path.split("/")[0] as string) ||
        NODE_ONLY_PACKAGES.some((name) => path === name || path.startsWith(`${name}/`)),
    );
    expect(nodeOnly).toEqual([]);
    const ownSources = Object.keys(result.metafile.inputs);
    expect(ownSources).toContain("src/app.ts");
    expect(ownSources.filter((path) => path.startsWith("src/entry/"))).toEqual([]);
    expect(result.outputFiles[0]?.text).not.toMatch(PROCESS);
  });

  it("bundles with its dependencies for a platform without Node, and the bundle never reads process", async () => {
    const result = await bundle("bundle");
    expect(result.errors).toEqual([]);
    expect(result.outputFiles[0]?.text).not.toMatch(PROCESS);
  });

  it("keeps generated asset modules to data: exported string constants, nothing imported", () => {
    const source = readFileSync("src/routes/docs/swagger-ui-assets.ts", "utf8");
    expect(source).not.toMatch(/^\s*import\b/m);
    expect(source).toMatch(/^export const swaggerUi = \{/m);
  });
});
