import { execFileSync } from "node:child_process";

/**
 * vitest globalSetup: builds `dist/` once per run (esbuild, well under a second), so every suite
 * that starts a server process runs the JavaScript that `npm start` and the Docker image run.
 */
export default function build(): void {
  execFileSync("npm", ["run", "build", "--silent"], { stdio: "inherit" });
}
