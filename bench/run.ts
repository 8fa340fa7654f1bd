import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseEnv } from "../src/env.ts";
import { createScratchDatabase, dropScratchDatabase } from "../test/support/database.ts";
import { benchAuth } from "./auth.ts";
import { batchedClaimCeiling, prepareCeilings, resetCeilings, singleClaimCeiling } from "./ceilings.ts";
import { databaseCeiling } from "./database-ceiling.ts";
import { seedHistory } from "./history.ts";
import { closedLoop, LoadClient, percentile } from "./load.ts";
import { describeMachine } from "./machine.ts";
import { type BenchProcess, cpuSnapshot, memoryOf, sampleMemory, startNodeProcess } from "./processes.ts";
import { fixed, scenarioTable, table } from "./report.ts";
import {
  type BenchContext,
  type Counts,
  createSession,
  flow,
  hot,
  pay,
  type ScenarioResult,
  type Session,
  spread,
} from "./scenarios.ts";

/**
 * `npm run bench`: starts the service on a scratch database (or targets BENCH_URL), measures the
 * ceilings of this machine in the same run (the bench's own minimal claim, one and several per
 * transaction; a trivial Hono handler; and, as a diagnostic, the service's claim through pg),
 * runs every scenario, checks the invariants in the rows, and prints the tables. Exits 1 when an
 * invariant failed; targets are reported, never enforced. Loopback only; bounded in time.
 */

const env = process.env;
const smoke = env.BENCH_SMOKE === "1";
const concurrency = Number(env.BENCH_CONNECTIONS ?? 64);
const adminUrl = env.BENCH_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const poolSize = Number(env.BENCH_POOL_SIZE ?? parseEnv({}).databasePoolSize);
// BENCH_AUTH=1: the service verifies a bearer token on every request and counts rate limits.
const auth = env.BENCH_AUTH === "1" ? benchAuth() : undefined;
const deadlineSeconds = Number(env.BENCH_TIMEOUT_S ?? (smoke ? 120 : 900));

const counts: Counts = {
  ...(smoke
    ? {
        spreadHolds: 64,
        hotRounds: 1,
        hotBuyers: 128,
        payHolds: 64,
        flowBuyers: 64,
        scaleHolds: 64,
        historyClaims: 2_000,
      }
    : {
        spreadHolds: 8_000,
        hotRounds: 20,
        hotBuyers: 1_000,
        payHolds: 2_000,
        flowBuyers: 1_500,
        scaleHolds: 2_000,
        historyClaims: 1_000_000,
      }),
  // e.g. BENCH_COUNTS='{"hotRounds":30}' to profile one scenario for longer
  ...(env.BENCH_COUNTS ? (JSON.parse(env.BENCH_COUNTS) as Partial<Counts>) : {}),
};
const sizes = smoke
  ? { warmup: 64, httpCeiling: 500, dbCeiling: 128 }
  : { warmup: 4_000, httpCeiling: 60_000, dbCeiling: 8_000 };

/** Nothing expires while the bench runs; expiry is not what it measures. */
const TTL_SECONDS = 600;
const TARGETS = {
  spreadVsDatabase: 0.7,
  spreadP99Ms: 50,
  payVsDatabase: 0.7,
  flowVsDatabase: 0.35,
  hotVsHttp: 0.5,
  rssMb: 150,
  scale: 0.85,
  history: 0.8,
};
/** Holds per transaction in the batched ceiling (b). */
const CEILING_BATCH = 8;

const cleanups: (() => Promise<void>)[] = [];
async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${deadlineSeconds} s; stopping`);
  void cleanUp().finally(() => process.exit(2));
}, deadlineSeconds * 1000);
watchdog.unref();

function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** `cpuMicros`: the server's own CPU per request (from /proc), where the ceiling is a server. */
type Ceiling = { rate: number; p50: number; p99: number; count: number; cpuMicros?: number };

async function httpCeiling(workDir: string): Promise<Ceiling> {
  const server = await startNodeProcess({
    entry: "bench/trivial-server.ts",
    env: {},
    logFile: join(workDir, "trivial-server.log"),
    readyPath: "/ping",
  });
  cleanups.push(server.stop);
  const client = new LoadClient(server.url, concurrency);
  try {
    const body = (i: number) => ({
      userId: `ceiling-${i}`,
      seatIds: [crypto.randomUUID(), crypto.randomUUID()],
    });
    const send = async (_: unknown, i: number) => {
      await client.send("ceiling", "POST", "/reservations", body(i));
    };
    await closedLoop(concurrency, Array.from({ length: sizes.warmup * 2 }), send);
    client.reset();
    const cpuBefore = cpuSnapshot(server.pid, "").service;
    const { seconds } = await closedLoop(concurrency, Array.from({ length: sizes.httpCeiling }), send);
    const cpuSeconds = cpuSnapshot(server.pid, "").service - cpuBefore;
    const series = client.series.get("ceiling");
    const ok = series?.statuses.get(200) ?? 0;
    if (ok !== sizes.httpCeiling)
      throw new Error(`trivial server answered ${ok}/${sizes.httpCeiling} with 200`);
    const latencies = series?.latencies ?? [];
    return {
      rate: ok / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      count: ok,
      cpuMicros: (cpuSeconds / ok) * 1e6,
    };
  } finally {
    await client.close();
    await server.stop();
  }
}

function ceilingOf(run: { claims: number; seconds: number; latencies: number[] }): Ceiling {
  return {
    rate: run.claims / run.seconds,
    p50: percentile(run.latencies, 50),
    p99: percentile(run.latencies, 99),
    count: run.claims,
  };
}

/**
 * The bench's own minimal claim, (a) one hold per transaction and (b) CEILING_BATCH per
 * transaction, with the service's callers and pool size: independent of src/ and drizzle/.
 */
async function minimalCeilings(databaseUrl: string): Promise<{ single: Ceiling; batched: Ceiling }> {
  await prepareCeilings(databaseUrl);
  const options = { databaseUrl, poolSize, concurrency, seatsPerHold: 2, ttlSeconds: TTL_SECONDS };
  await singleClaimCeiling({ ...options, holds: sizes.warmup });
  await batchedClaimCeiling({ ...options, holds: sizes.warmup, perTransaction: CEILING_BATCH });
  await resetCeilings(databaseUrl);
  // What a claim costs the machine there: the bench's own process (the client) and PostgreSQL.
  const database = new URL(databaseUrl).pathname.slice(1);
  const cpuOf = async <T extends { claims: number }>(run: () => Promise<T>) => {
    const before = cpuSnapshot(undefined, database);
    const result = await run();
    const after = cpuSnapshot(undefined, database);
    const seconds = after.loadGenerator - before.loadGenerator + after.postgres - before.postgres;
    return { ...result, cpuMicros: (seconds / result.claims) * 1e6 };
  };
  const single = await cpuOf(() => singleClaimCeiling({ ...options, holds: sizes.dbCeiling }));
  await resetCeilings(databaseUrl);
  const batched = await cpuOf(() =>
    batchedClaimCeiling({ ...options, holds: sizes.dbCeiling * 2, perTransaction: CEILING_BATCH }),
  );
  await resetCeilings(databaseUrl);
  for (const [name, run, expected] of [
    ["single", single, sizes.dbCeiling],
    ["batched", batched, sizes.dbCeiling * 2],
  ] as const) {
    if (run.claims !== expected) throw new Error(`ceiling (${name}) made ${run.claims}/${expected} claims`);
  }
  return {
    single: { ...ceilingOf(single), cpuMicros: single.cpuMicros },
    batched: { ...ceilingOf(batched), cpuMicros: batched.cpuMicros },
  };
}

/** Diagnostic: the service's own claim statement, sent through pg alone. */
async function ourClaimThroughPg(ctx: BenchContext, databaseUrl: string): Promise<Ceiling> {
  const pairsOn = async (count: number) => {
    const pairs: { sessionId: string; seatIds: [string, string] }[] = [];
    for (const session of await sessionsFor(ctx, count)) {
      const here = Math.min(count - pairs.length, PAIRS_PER_SESSION);
      for (let i = 0; i < here; i++)
        pairs.push({
          sessionId: session.id,
          seatIds: session.seatIds.slice(2 * i, 2 * i + 2) as [string, string],
        });
    }
    return { pairs };
  };
  const options = { databaseUrl, poolSize, concurrency, ttlSeconds: TTL_SECONDS };
  await databaseCeiling({ ...options, ...(await pairsOn(sizes.warmup)) });
  const run = await databaseCeiling({ ...options, ...(await pairsOn(sizes.dbCeiling)) });
  if (run.claims !== sizes.dbCeiling)
    throw new Error(`our claim through pg made ${run.claims}/${sizes.dbCeiling} claims`);
  return ceilingOf(run);
}

/**
 * The node flags of `npm start` (`node <flags> dist/node.js`, as the Dockerfile runs it too), so
 * the bench measures the service as it is deployed, heap sizing included.
 */
function startFlags(): string[] {
  const script = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> })
    .scripts.start;
  const words = script?.trim().split(/\s+/) ?? [];
  if (words[0] !== "node" || words.at(-1) !== "dist/node.js") {
    log(`npm start is not "node <flags> dist/node.js"; starting the service without flags`);
    return [];
  }
  return words.slice(1, -1);
}

/** Disjoint seat pairs a session of the bench gives (sessions have at most 10,000 seats). */
const PAIRS_PER_SESSION = 4_000;

/** Sessions of 100-seat rows enough for `pairs` disjoint pairs, at most PAIRS_PER_SESSION each. */
async function sessionsFor(ctx: BenchContext, pairs: number): Promise<Session[]> {
  const count = Math.ceil(pairs / PAIRS_PER_SESSION);
  const perSession = Math.ceil(pairs / count);
  const sessions: Session[] = [];
  for (let i = 0; i < count; i++)
    sessions.push(await createSession(ctx, Math.ceil((2 * perSession) / 100), 100));
  return sessions;
}

/**
 * Before each measured phase: vacuum and analyze the tables the claims write, so that no phase
 * (the database ceiling included) pays for the dead rows and stale statistics of the one before.
 */
async function settle(db: pg.Pool): Promise<void> {
  await db.query("VACUUM (ANALYZE) reservations, reservation_seats, outbox, sales").catch(() => undefined);
}

/** Untimed: lets the service's JIT, pools and caches settle before anything is measured. */
async function warmUp(ctx: BenchContext): Promise<void> {
  const session = await createSession(ctx, Math.ceil((2 * sizes.warmup) / 100), 100);
  const pairs = Array.from({ length: sizes.warmup }, (_, i) => session.seatIds.slice(2 * i, 2 * i + 2));
  const holds: string[] = [];
  await closedLoop(concurrency, pairs, async (seatIds, i) => {
    const answer = await ctx.client.send("warmup", "POST", "/reservations", { userId: `warm-${i}`, seatIds });
    if (answer.status === 201) holds.push(answer.body.id);
    await ctx.client.send("warmup", "POST", "/reservations", { userId: `warm-late-${i}`, seatIds });
  });
  await closedLoop(concurrency, holds.slice(0, holds.length / 2), async (id) => {
    await ctx.client.send("warmup", "POST", `/reservations/${id}/pay`, {});
  });
  // A crowd on a few seats, as in `hot`: the refusal memory answers nearly all of them, a path the
  // holds above barely take (each of their seats is refused once, by the lock). As many requests as
  // the trivial handler gets before its ceiling is measured.
  const crowded = await createSession(ctx, 2, 8);
  const crowd = Array.from({ length: sizes.warmup * 2 }, (_, i) =>
    crowded.seatIds.slice(2 * (i % 8), 2 * (i % 8) + 2),
  );
  await closedLoop(concurrency, crowd, async (seatIds, i) => {
    await ctx.client.send("warmup", "POST", "/reservations", { userId: `warm-crowd-${i}`, seatIds });
  });
}

async function main(): Promise<number> {
  const workDir = mkdtempSync(join(tmpdir(), "bench-"));
  let serviceUrl = env.BENCH_URL;
  let databaseUrl = env.BENCH_DATABASE_URL;
  let service: BenchProcess | undefined;
  if (!serviceUrl) {
    databaseUrl = await createScratchDatabase(adminUrl);
    const scratch = databaseUrl;
    if (env.BENCH_KEEP_DB !== "1") cleanups.push(() => dropScratchDatabase(adminUrl, scratch));
    const profileDir = env.BENCH_CPU_PROF;
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    service = await startNodeProcess({
      entry: "dist/node.js",
      env: {
        DATABASE_URL: databaseUrl,
        REDIS_URL: redisUrl,
        DATABASE_POOL_SIZE: String(poolSize),
        LOG_LEVEL: env.BENCH_LOG_LEVEL ?? "info",
        RESERVATION_TTL_SECONDS: String(TTL_SECONDS),
        ...(auth ? auth.serviceEnv : {}),
      },
      logFile: join(workDir, "service.log"),
      readyPath: "/health/live",
      nodeArgs: [
        ...startFlags(),
        // e.g. BENCH_NODE_ARGS=--perf-basic-prof, or --trace-gc (its lines go to the service log)
        ...(env.BENCH_NODE_ARGS ? env.BENCH_NODE_ARGS.split(" ") : []),
        ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
      ],
    });
    cleanups.push(service.stop);
    serviceUrl = service.url;
    log(`service pid ${service.pid} at ${serviceUrl}, log ${service.logFile}, database ${databaseUrl}`);
  } else if (!databaseUrl) {
    throw new Error("BENCH_URL needs BENCH_DATABASE_URL: the service's database, for the invariants");
  }
  const pid = service?.pid ?? (env.BENCH_PID ? Number(env.BENCH_PID) : undefined);
  const memory = sampleMemory(pid);
  cleanups.push(async () => memory.stop());

  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  cleanups.push(() => db.end());
  const client = new LoadClient(serviceUrl, concurrency, auth?.client);
  cleanups.push(() => client.close());
  if (auth) log(`auth on: ${auth.description}`);
  const databaseName = new URL(databaseUrl as string).pathname.slice(1);
  const ctx: BenchContext = {
    client,
    db,
    concurrency,
    counts,
    takeRss: () => memory.take(),
    cpu: () => cpuSnapshot(pid, databaseName),
  };
  const metricsText = async () => (await fetch(`${serviceUrl}/metrics`)).text();

  log("warming up the service");
  await warmUp(ctx);
  log("HTTP ceiling: a trivial Hono handler on @hono/node-server");
  const http = await httpCeiling(workDir);
  log("database ceilings: the minimal claim, one and several per transaction");
  await settle(db);
  const { single: database, batched } = await minimalCeilings(databaseUrl as string);
  log("diagnostic: our claim statement through the pg driver alone");
  await settle(db);
  const ourClaim = await ourClaimThroughPg(ctx, databaseUrl as string);

  const results: ScenarioResult[] = [];
  const only = env.BENCH_SCENARIOS?.split(",").map((name) => name.trim());
  const run = async (name: string, scenario: () => Promise<ScenarioResult>) => {
    if (only && !only.includes(name.split(" ")[0] as string)) return;
    log(`scenario ${name}`);
    await settle(db);
    results.push(await scenario());
  };
  await run("spread", async () => {
    const sessions = await sessionsFor(ctx, counts.spreadHolds);
    return spread(ctx, "spread", sessions, Math.ceil(counts.spreadHolds / sessions.length));
  });
  await run("hot", () => hot(ctx, metricsText));
  await run("pay", () => pay(ctx));
  await run("flow", () => flow(ctx));
  const perSmall = Math.min(counts.scaleHolds, 500);
  const smallSessions = Math.ceil(counts.scaleHolds / perSmall);
  await run("scale 1k", async () => {
    const small: Session[] = [];
    for (let i = 0; i < smallSessions; i++) small.push(await createSession(ctx, 25, 40));
    return spread(ctx, "scale-1k", small, perSmall);
  });
  await run("scale 10k", async () => {
    const large = await createSession(ctx, 100, 100);
    return spread(ctx, "scale-10k", [large], perSmall * smallSessions);
  });
  // Last: it leaves the database full of the past. Spread again, after 1,000,000 past claims.
  await run("history", async () => {
    log(`seeding ${counts.historyClaims} past claims with SQL`);
    const seeded = await seedHistory(ctx, databaseUrl as string, counts.historyClaims);
    log(`seeded ${seeded.claims} claims on ${seeded.sessions} past sessions`);
    const sessions = await sessionsFor(ctx, counts.spreadHolds);
    const result = await spread(ctx, "history", sessions, Math.ceil(counts.spreadHolds / sessions.length));
    return {
      ...result,
      description: `${result.description}, on a database that holds ${seeded.claims} past claims`,
    };
  });
  const peak = pid === undefined ? undefined : memoryOf(pid)?.peakMb;
  const machine = await describeMachine(db, redisUrl);

  console.log(report({ http, database, batched, ourClaim, results, peak, machine }));
  const failed = results.flatMap((result) =>
    result.checks.filter((c) => !c.ok).map((c) => `${result.name}: ${c.name}`),
  );
  if (env.BENCH_JSON) {
    writeFileSync(
      env.BENCH_JSON,
      JSON.stringify(
        {
          smoke,
          machine: Object.fromEntries(machine),
          concurrency,
          poolSize,
          counts,
          ceilings: { http, database, batched, ourClaim },
          results,
          peakRssMb: peak,
          failed,
        },
        null,
        2,
      ),
    );
  }
  if (failed.length > 0) console.error(`bench: invariants FAILED: ${failed.join("; ")}`);
  return failed.length > 0 ? 1 : 0;
}

function report(run: {
  http: Ceiling;
  database: Ceiling;
  batched: Ceiling;
  ourClaim: Ceiling;
  results: ScenarioResult[];
  peak: number | undefined;
  machine: [string, string][];
}) {
  const { http, database, batched, ourClaim, results, peak } = run;
  const row = (name: string, ceiling: Ceiling, unit: string) => [
    name,
    `${fixed(ceiling.rate)} ${unit}`,
    `${fixed(ceiling.p50, 1)} ms`,
    `${fixed(ceiling.p99, 1)} ms`,
    String(ceiling.count),
    ceiling.cpuMicros === undefined ? "" : `${fixed(ceiling.cpuMicros)} us`,
  ];
  const byName = (name: string) => results.find((result) => result.name === name);
  const ceilings = table(
    [
      "ceiling",
      "rate",
      "p50",
      "p99",
      "requests",
      "CPU per request (HTTP: server; a, b: client + PostgreSQL)",
    ],
    [
      row("HTTP: trivial Hono handler, same stack", http, "req/s"),
      row(`(a) database: minimal claim, 1 per transaction (pool ${poolSize})`, database, "claims/s"),
      row(`(b) database: minimal claim, ${CEILING_BATCH} per transaction`, batched, "claims/s"),
      row("diagnostic: our claim statement via pg, 1 per call", ourClaim, "claims/s"),
    ],
  );
  const spreadResult = byName("spread");
  const hotResult = byName("hot");
  const payResult = byName("pay");
  const flowResult = byName("flow");
  const small = byName("scale-1k");
  const large = byName("scale-10k");
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const summaryRows: string[][] = results.map((result) => {
    // Hot-seat decisions are judged against HTTP (losers never reach the database), the rest
    // against the minimal claim (a); a purchase (flow) is two requests, a hold and a payment.
    const versus =
      result.name === "hot"
        ? `${fixed(result.rate / http.rate, 2)} x HTTP`
        : `${fixed(result.rate / database.rate, 2)} x (a)`;
    return [
      result.name,
      `${fixed(result.rate)} ${result.rateUnit}`,
      `${fixed(result.p50, 1)} ms`,
      `${fixed(result.p99, 1)} ms`,
      versus,
      result.checks.every((check) => check.ok) ? "all hold" : "FAILED",
    ];
  });
  const targets: string[][] = [];
  if (spreadResult) {
    const ratio = spreadResult.rate / database.rate;
    targets.push([
      "spread holds/s >= 0.7 x ceiling (a)",
      fixed(ratio, 2),
      verdict(ratio >= TARGETS.spreadVsDatabase),
    ]);
    targets.push([
      "spread p99 <= 50 ms",
      `${fixed(spreadResult.p99, 1)} ms`,
      verdict(spreadResult.p99 <= TARGETS.spreadP99Ms),
    ]);
  }
  for (const [result, target, label] of [
    [payResult, TARGETS.payVsDatabase, "pay payments/s >= 0.7 x ceiling (a)"],
    [flowResult, TARGETS.flowVsDatabase, "flow purchases/s >= 0.35 x ceiling (a)"],
  ] as const) {
    if (!result) continue;
    const ratio = result.rate / database.rate;
    targets.push([label, fixed(ratio, 2), verdict(ratio >= target)]);
  }
  if (hotResult) {
    const ratio = hotResult.rate / http.rate;
    targets.push([
      "hot decisions/s >= 0.5 x HTTP ceiling",
      fixed(ratio, 2),
      verdict(ratio >= TARGETS.hotVsHttp),
    ]);
  }
  if (peak !== undefined) {
    targets.push(["service peak RSS (VmHWM) <= 150 MB", `${fixed(peak)} MB`, verdict(peak <= TARGETS.rssMb)]);
  }
  const history = byName("history");
  if (spreadResult && history) {
    const ratio = history.rate / spreadResult.rate;
    targets.push([
      "history: spread after 1M past claims vs fresh (>= 0.8)",
      fixed(ratio, 2),
      verdict(ratio >= TARGETS.history),
    ]);
  }
  if (small && large) {
    const ratio = large.rate / small.rate;
    targets.push([
      "scale: 10k-seat holds/s vs 1k-seat (>= 0.85)",
      fixed(ratio, 2),
      verdict(ratio >= TARGETS.scale),
    ]);
  }
  return [
    "## Machine",
    table(
      ["", ""],
      [
        ...run.machine,
        [
          "load",
          `service, PostgreSQL, Redis and the load generator share these cores; ${concurrency} connections`,
        ],
      ],
    ),
    `## Ceilings (same run, ${concurrency} connections)`,
    ceilings,
    "## Scenarios",
    ...results.map(scenarioTable),
    "## Summary",
    table(["scenario", "rate", "p50", "p99", "vs ceiling", "invariants"], summaryRows),
    "## Targets",
    table(["target", "measured", ""], targets),
    smoke ? "(BENCH_SMOKE: tiny counts; the figures mean nothing, the invariants do)" : "",
  ].join("\n\n");
}

main()
  .then(async (code) => {
    await cleanUp();
    process.exit(code);
  })
  .catch(async (error) => {
    console.error(error);
    await cleanUp();
    process.exit(1);
  });
