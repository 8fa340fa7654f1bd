import { parseArgs } from "node:util";
import { RECONCILE_DEFAULTS, type ReconcileReport, reconcile } from "../booking/reconcile.ts";
import { createNodePostgresDatabase } from "../db/node-postgres.ts";
import { ConfigError, parseEnv, reconcileDatabaseUrl } from "../env.ts";

/**
 * `npm run reconcile`: reads the rows of DATABASE_URL and reports every breach of the service's
 * promises (booking/reconcile.ts). Exit 0 when every check holds, 1 on any breach, 2 when the
 * checks could not run (configuration, database unreachable). `--json` prints the report as JSON.
 */
const USAGE =
  "usage: npm run reconcile -- [--json] [--outbox-max-age SECONDS] [--pending-grace SECONDS] [--samples N]";

function count(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`--${name}: must be an integer of at least ${min}, not ${JSON.stringify(text)}`);
  }
  return value;
}

function render(report: ReconcileReport, where: string): string {
  const breaches = report.checks.filter((check) => check.count > 0).length;
  const lines = [
    `reconcile ${where} at ${report.checkedAt}: ${breaches === 0 ? "every check holds" : `${breaches} check(s) breached`}`,
  ];
  const width = Math.max(...report.checks.map((check) => check.name.length));
  for (const check of report.checks) {
    const mark = check.count === 0 ? "ok  " : "FAIL";
    const counted = check.count === 0 ? "" : ` (${check.count})`;
    lines.push(`  ${mark}  ${`${check.name}${counted}`.padEnd(width + 8)} ${check.description}`);
    for (const sample of check.samples) lines.push(`          ${JSON.stringify(sample)}`);
    if (check.count > check.samples.length) {
      lines.push(`          ... and ${check.count - check.samples.length} more`);
    }
  }
  return lines.join("\n");
}

let options: { json: boolean; outboxMaxAgeSeconds: number; pendingGraceSeconds: number; sampleSize: number };
let url: string;
try {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      "outbox-max-age": { type: "string" },
      "pending-grace": { type: "string" },
      samples: { type: "string" },
    },
  });
  options = {
    json: values.json === true,
    outboxMaxAgeSeconds: count(
      "outbox-max-age",
      values["outbox-max-age"],
      RECONCILE_DEFAULTS.outboxMaxAgeSeconds,
      0,
    ),
    pendingGraceSeconds: count(
      "pending-grace",
      values["pending-grace"],
      RECONCILE_DEFAULTS.pendingGraceSeconds,
      0,
    ),
    sampleSize: count("samples", values.samples, RECONCILE_DEFAULTS.sampleSize, 1),
  };
  url = reconcileDatabaseUrl(parseEnv(process.env));
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`reconcile: ${message}\n${USAGE}`);
  process.exit(2);
}

const where = (() => {
  const parsed = new URL(url);
  return `${parsed.host}${parsed.pathname}`;
})();
const database = createNodePostgresDatabase(url, 1);
let exitCode: number;
try {
  const { json, ...checks } = options;
  const report = await reconcile(database.db, checks);
  console.log(json ? JSON.stringify(report, null, 2) : render(report, where));
  exitCode = report.ok ? 0 : 1;
} catch (error) {
  console.error(`reconcile: cannot read ${where}: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = 2;
}
await database.close().catch(() => {});
process.exit(exitCode);
