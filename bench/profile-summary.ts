import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { table } from "./report.ts";

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, as `BENCH_CPU_PROF=dir npm run bench` writes for
 * the service): self time by package or source folder, and the hottest functions.
 * Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile | dir (newest profile)> [top]
 */

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

function newestProfile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const files = readdirSync(path)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => join(path, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!files[0]) throw new Error(`no .cpuprofile in ${path}`);
  return files[0];
}

/** Where a function lives: an npm package, a folder of ours, node internals, or V8 itself. */
function ownerOf(url: string, name: string): string {
  if (!url) return name.startsWith("(") ? name : "(native)";
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1] as string;
  if (url.startsWith("node:")) return "node internals";
  const ours = /\/(src\/[^/]+|bench)\//.exec(url);
  return ours ? (ours[1] as string) : url;
}

const [target, topArg] = process.argv.slice(2);
if (!target) throw new Error("usage: profile-summary.ts <file.cpuprofile | dir> [top]");
const file = newestProfile(target);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const top = Number(topArg ?? 25);

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, index) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
});
const total = [...selfUs.values()].reduce((sum, us) => sum + us, 0);
const idle = [...selfUs.entries()]
  .filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)")
  .reduce((sum, [, us]) => sum + us, 0);
const busy = total - idle;

const owners = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of selfUs) {
  const frame = byId.get(id)?.callFrame;
  if (!frame || frame.functionName === "(idle)") continue;
  const owner = ownerOf(frame.url, frame.functionName);
  owners.set(owner, (owners.get(owner) ?? 0) + us);
  const where = frame.url
    ? `${frame.url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${frame.lineNumber + 1}`
    : "";
  const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
  functions.set(key, (functions.get(key) ?? 0) + us);
}

// Inclusive time: a frame's own samples plus its callees', counted once per function per stack.
const parentOf = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  if (byId.get(id)?.callFrame.functionName === "(idle)") continue;
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const frame = byId.get(at)?.callFrame;
    if (!frame?.url || frame.url.startsWith("node:")) continue;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${frame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const share = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
const ranked = (map: Map<string, number>) =>
  [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => [key, `${(us / 1000).toFixed(0)} ms`, share(us)]);

console.log(`${file}: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms sampled\n`);
console.log(table(["self time by owner", "ms", "of busy"], ranked(owners)));
console.log();
console.log(table(["hottest functions (self)", "ms", "of busy"], ranked(functions)));
console.log();
console.log(table(["hottest code of ours and of packages (inclusive)", "ms", "of busy"], ranked(inclusive)));
