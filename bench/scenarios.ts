import type pg from "pg";
import { type Check, check, claimChecks, metricValue, readSessionRows } from "./invariants.ts";
import { closedLoop, type LoadClient, percentile } from "./load.ts";
import type { CpuShares } from "./processes.ts";

/**
 * The scenarios of `npm run bench`. Each drives the service over HTTP, then reads the database
 * rows of its own sessions and checks the invariants: no seat in two live claims, as many live
 * holds as 201s, every hold with all its seats, sales = confirmed reservations.
 */

export type Counts = {
  spreadHolds: number;
  hotRounds: number;
  hotBuyers: number;
  payHolds: number;
  flowBuyers: number;
  scaleHolds: number;
  historyClaims: number;
};

export type BenchContext = {
  client: LoadClient;
  db: pg.Pool;
  concurrency: number;
  counts: Counts;
  /** The highest RSS of the service since the last call, in MB (0 when unknown). */
  takeRss(): number;
  /** CPU seconds used so far by the service, the load generator, PostgreSQL and Redis. */
  cpu(): CpuShares;
};

export type Figure = { label: string; value: number; unit: string };

export type ScenarioResult = {
  name: string;
  description: string;
  /** The headline rate (per second) and its unit; latencies of the headline requests in ms. */
  rate: number;
  rateUnit: string;
  p50: number;
  p99: number;
  figures: Figure[];
  rssMb: number;
  checks: Check[];
};

export type Session = { id: string; seatIds: string[] };

const CORES = 2;

/** Where the CPU went during a timed phase: per request, by party, and how busy the machine was. */
function cpuFigures(before: CpuShares, after: CpuShares, requests: number, seconds: number): Figure[] {
  const parties: [keyof CpuShares, string][] = [
    ["service", "service"],
    ["postgres", "PostgreSQL"],
    ["redis", "Redis"],
    ["loadGenerator", "load generator"],
  ];
  const used = parties.map(([key, label]) => ({ label, seconds: after[key] - before[key] }));
  const total = used.reduce((sum, party) => sum + (Number.isFinite(party.seconds) ? party.seconds : 0), 0);
  return [
    ...used.map((party) => ({
      label: `CPU per request: ${party.label}`,
      value: (party.seconds / Math.max(requests, 1)) * 1e6,
      unit: "us",
    })),
    { label: `CPU busy (of ${CORES} cores)`, value: (100 * total) / (seconds * CORES), unit: "%" },
  ];
}

const PRICE = 12.5;
let sessionNumber = 0;

export async function createSession(
  ctx: BenchContext,
  rowsCount: number,
  seatsPerRow: number,
): Promise<Session> {
  const answer = await ctx.client.send("setup", "POST", "/sessions", {
    movieId: "bench",
    room: `bench-${++sessionNumber}`,
    startsAt: "2030-01-01T20:00:00Z",
    price: PRICE,
    rowsCount,
    seatsPerRow,
  });
  if (answer.status !== 201) throw new Error(`POST /sessions answered ${answer.status}`);
  return { id: answer.body.id, seatIds: answer.body.seats.map((seat: { id: string }) => seat.id) };
}

/** Disjoint adjacent pairs of a session's seats, the first `count` of them. */
function pairsOf(session: Session, count: number): string[][] {
  if (count * 2 > session.seatIds.length) throw new Error("session too small for its pairs");
  return Array.from({ length: count }, (_, i) => session.seatIds.slice(2 * i, 2 * i + 2));
}

function statusCount(ctx: BenchContext, label: string, status: number): number {
  return ctx.client.series.get(label)?.statuses.get(status) ?? 0;
}

function latencies(ctx: BenchContext, label: string): number[] {
  return ctx.client.series.get(label)?.latencies ?? [];
}

function answered(ctx: BenchContext, label: string): number {
  return latencies(ctx, label).length + (ctx.client.series.get(label)?.failures ?? 0);
}

/** Holds one disjoint pair per buyer; answers the ids of the holds made. */
async function holdPairs(ctx: BenchContext, label: string, pairs: string[][], prefix: string) {
  const holds: string[] = [];
  const { seconds } = await closedLoop(ctx.concurrency, pairs, async (seatIds, i) => {
    const answer = await ctx.client.send(label, "POST", "/reservations", {
      userId: `${prefix}-${i}`,
      seatIds,
    });
    if (answer.status === 201) holds.push(answer.body.id);
  });
  return { holds, seconds };
}

/** `spread`: disjoint two-seat holds, so every request should win; the claim path at full speed. */
export async function spread(
  ctx: BenchContext,
  name: string,
  sessions: Session[],
  holdsPerSession: number,
): Promise<ScenarioResult> {
  ctx.client.reset();
  ctx.takeRss();
  const pairs = sessions.flatMap((session) => pairsOf(session, holdsPerSession));
  const before = ctx.cpu();
  const { holds, seconds } = await holdPairs(ctx, "hold", pairs, name);
  const cpu = cpuFigures(before, ctx.cpu(), pairs.length, seconds);
  const rows = await readSessionRows(
    ctx.db,
    sessions.map((session) => session.id),
  );
  const seats = sessions[0]?.seatIds.length ?? 0;
  return {
    name,
    description: `${ctx.concurrency} concurrent buyers, ${pairs.length} disjoint two-seat holds on ${sessions.length} session(s) of ${seats} seats`,
    rate: holds.length / seconds,
    rateUnit: "holds/s",
    p50: percentile(latencies(ctx, "hold"), 50),
    p99: percentile(latencies(ctx, "hold"), 99),
    figures: cpu,
    rssMb: ctx.takeRss(),
    checks: [
      check("201 answers", holds.length, pairs.length),
      check("live holds in the rows", rows.live, holds.length),
      ...claimChecks(rows, 2),
    ],
  };
}

/**
 * `hot`: each round, `hotBuyers` buyers fight over 16 seats (8 disjoint pairs, each wanted by an
 * eighth of them): 8 winners a round, every loser answered 409 before any transaction, by the
 * Redis lock or from the memory of seats it has just refused (the two conflict counters must grow
 * by the number of losers).
 */
export async function hot(ctx: BenchContext, metricsText: () => Promise<string>): Promise<ScenarioResult> {
  const { hotRounds, hotBuyers } = ctx.counts;
  const sessions: Session[] = [];
  for (let round = 0; round < hotRounds; round++) sessions.push(await createSession(ctx, 2, 8));
  const jobs = sessions.flatMap((session, round) =>
    Array.from({ length: hotBuyers }, (_, i) => {
      const pair = pairsOf(session, 8)[i % 8] as string[];
      return { userId: `hot-${round}-${i}`, seatIds: i % 16 < 8 ? pair : [...pair].reverse() };
    }),
  );
  const conflictsBefore = lockConflicts(await metricsText());
  ctx.client.reset();
  ctx.takeRss();
  const before = ctx.cpu();
  const { seconds } = await closedLoop(ctx.concurrency, jobs, async (job) => {
    await ctx.client.send("hot", "POST", "/reservations", job);
  });
  const cpu = cpuFigures(before, ctx.cpu(), jobs.length, seconds);
  const conflictsAfter = lockConflicts(await metricsText());
  const byRedis = conflictsAfter.redis - conflictsBefore.redis;
  const fromMemory = conflictsAfter.memory - conflictsBefore.memory;
  const winners = statusCount(ctx, "hot", 201);
  const losers = statusCount(ctx, "hot", 409);
  const rows = await readSessionRows(
    ctx.db,
    sessions.map((session) => session.id),
  );
  return {
    name: "hot",
    description: `${hotRounds} round(s) of ${hotBuyers} buyers on 16 seats (8 pairs), ${ctx.concurrency} connections`,
    rate: answered(ctx, "hot") / seconds,
    rateUnit: "decisions/s",
    p50: percentile(latencies(ctx, "hot"), 50),
    p99: percentile(latencies(ctx, "hot"), 99),
    figures: [
      { label: "winners", value: winners, unit: "" },
      { label: "losers (409)", value: losers, unit: "" },
      { label: "losers stopped by the Redis lock", value: byRedis, unit: "" },
      { label: "losers stopped from memory (seats Redis had just refused)", value: fromMemory, unit: "" },
      ...cpu,
    ],
    rssMb: ctx.takeRss(),
    checks: [
      check("winners (8 per round)", winners, 8 * hotRounds),
      check("every other buyer 409", losers, jobs.length - 8 * hotRounds),
      check("live holds in the rows", rows.live, winners),
      check("losers turned away before the database", byRedis + fromMemory, losers),
      ...claimChecks(rows, 2),
    ],
  };
}

function lockConflicts(text: string): { redis: number; memory: number } {
  const conflicts = (backend: string) =>
    metricValue(text, "seat_lock_acquisitions_total", { result: "conflict", backend });
  return { redis: conflicts("redis"), memory: conflicts("memory") };
}

/** `pay`: holds first (not timed), then every hold paid at once. */
export async function pay(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.counts.payHolds;
  const session = await createSession(ctx, Math.ceil((2 * count) / 100), 100);
  const { holds } = await holdPairs(ctx, "setup-hold", pairsOf(session, count), "pay");
  ctx.client.reset();
  ctx.takeRss();
  const before = ctx.cpu();
  const { seconds } = await closedLoop(ctx.concurrency, holds, async (id) => {
    await ctx.client.send("pay", "POST", `/reservations/${id}/pay`, {});
  });
  const cpu = cpuFigures(before, ctx.cpu(), holds.length, seconds);
  const paid = statusCount(ctx, "pay", 200);
  const rows = await readSessionRows(ctx.db, [session.id]);
  return {
    name: "pay",
    description: `${holds.length} holds, then all paid by ${ctx.concurrency} concurrent payers`,
    rate: paid / seconds,
    rateUnit: "payments/s",
    p50: percentile(latencies(ctx, "pay"), 50),
    p99: percentile(latencies(ctx, "pay"), 99),
    figures: cpu,
    rssMb: ctx.takeRss(),
    checks: [
      check("holds made", holds.length, count),
      check("200 answers", paid, holds.length),
      check("confirmed in the rows", rows.confirmed, paid),
      check("sold seats", rows.soldSeats, 2 * paid),
      ...claimChecks(rows, 2),
    ],
  };
}

/** `flow`: each buyer holds two seats, then pays for them. */
export async function flow(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.counts.flowBuyers;
  const session = await createSession(ctx, Math.ceil((2 * count) / 100), 100);
  ctx.client.reset();
  ctx.takeRss();
  const purchases: number[] = [];
  const before = ctx.cpu();
  const { seconds } = await closedLoop(ctx.concurrency, pairsOf(session, count), async (seatIds, i) => {
    const started = performance.now();
    const held = await ctx.client.send("hold", "POST", "/reservations", { userId: `flow-${i}`, seatIds });
    if (held.status !== 201) return;
    const paid = await ctx.client.send("pay", "POST", `/reservations/${held.body.id}/pay`, {
      userId: `flow-${i}`,
    });
    if (paid.status === 200) purchases.push(performance.now() - started);
  });
  const cpu = cpuFigures(before, ctx.cpu(), count, seconds);
  const paid = statusCount(ctx, "pay", 200);
  const rows = await readSessionRows(ctx.db, [session.id]);
  return {
    name: "flow",
    description: `${count} buyers, each holds two seats then pays, ${ctx.concurrency} at a time`,
    rate: paid / seconds,
    rateUnit: "purchases/s",
    p50: percentile(purchases, 50),
    p99: percentile(purchases, 99),
    figures: [
      { label: "hold p99", value: percentile(latencies(ctx, "hold"), 99), unit: "ms" },
      { label: "pay p99", value: percentile(latencies(ctx, "pay"), 99), unit: "ms" },
      ...cpu,
    ],
    rssMb: ctx.takeRss(),
    checks: [
      check("holds (201)", statusCount(ctx, "hold", 201), count),
      check("purchases (200)", paid, count),
      check("confirmed in the rows", rows.confirmed, paid),
      check("sold seats", rows.soldSeats, 2 * paid),
      ...claimChecks(rows, 2),
    ],
  };
}
