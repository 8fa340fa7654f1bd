import { Pool } from "undici";

/**
 * A closed-loop HTTP load generator over undici: `connections` keep-alive sockets, one worker per
 * socket, each sending its next request as soon as the previous answer is read. Every answer is
 * kept (status, parsed body, latency) so scenarios can check invariants on what the server said.
 */

// biome-ignore lint/suspicious/noExplicitAny: the bench reads arbitrary response bodies
export type Answer = { status: number; body: any; ms: number };

export type Series = { latencies: number[]; statuses: Map<number, number>; failures: number };

/**
 * With auth on, every request carries a bearer token: the body's `userId`, the owner of the
 * reservation in the path (learnt from its hold's answer), else the organiser. Tokens are minted
 * once per user, before they are needed in a measured phase as far as possible.
 */
export type BenchAuth = { tokenFor(sub: string): Promise<string>; organiser: string };

export class LoadClient {
  readonly #pool: Pool;
  readonly #auth: BenchAuth | undefined;
  readonly #tokens = new Map<string, Promise<string>>();
  readonly #owners = new Map<string, string>();
  readonly series = new Map<string, Series>();

  readonly origin: string;
  readonly connections: number;

  constructor(origin: string, connections: number, auth?: BenchAuth) {
    this.origin = origin;
    this.connections = connections;
    this.#auth = auth;
    this.#pool = new Pool(origin, {
      connections,
      pipelining: 1,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      keepAliveTimeout: 60_000,
    });
  }

  /** Sends one request; `label` groups its latency and status with others of the same kind. */
  async send(label: string, method: "GET" | "POST", path: string, body?: unknown): Promise<Answer> {
    const series = this.#seriesOf(label);
    const authorization = this.#auth ? { authorization: `Bearer ${await this.#tokenOf(path, body)}` } : {};
    const started = performance.now();
    try {
      const response = await this.#pool.request({
        method,
        path,
        headers:
          body === undefined ? authorization : { "content-type": "application/json", ...authorization },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.body.text();
      const ms = performance.now() - started;
      series.latencies.push(ms);
      series.statuses.set(response.statusCode, (series.statuses.get(response.statusCode) ?? 0) + 1);
      const parsed = text ? JSON.parse(text) : undefined;
      if (this.#auth && typeof parsed?.id === "string" && typeof parsed?.userId === "string") {
        this.#owners.set(parsed.id, parsed.userId);
      }
      return { status: response.statusCode, body: parsed, ms };
    } catch (error) {
      // No answer at all counts as status 0, like a 5xx for the invariants.
      series.failures++;
      series.statuses.set(0, (series.statuses.get(0) ?? 0) + 1);
      return { status: 0, body: { error: String(error) }, ms: performance.now() - started };
    }
  }

  /** Forgets earlier measurements, so a scenario reports only its own requests. */
  reset(): void {
    this.series.clear();
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  #tokenOf(path: string, body: unknown): Promise<string> {
    const auth = this.#auth as BenchAuth;
    const named = (body as { userId?: unknown } | undefined)?.userId;
    const reservation = /^\/reservations\/([0-9a-f-]{36})/.exec(path)?.[1];
    const sub =
      typeof named === "string" ? named : ((reservation && this.#owners.get(reservation)) ?? auth.organiser);
    let token = this.#tokens.get(sub);
    if (!token) {
      token = auth.tokenFor(sub);
      this.#tokens.set(sub, token);
    }
    return token;
  }

  #seriesOf(label: string): Series {
    let series = this.series.get(label);
    if (!series) {
      series = { latencies: [], statuses: new Map(), failures: 0 };
      this.series.set(label, series);
    }
    return series;
  }
}

/**
 * Runs `work` once per job with at most `concurrency` jobs in flight, taking jobs in order.
 * Answers the wall time from the first send to the last answer.
 */
export async function closedLoop<Job>(
  concurrency: number,
  jobs: readonly Job[],
  work: (job: Job, index: number) => Promise<void>,
): Promise<{ seconds: number }> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      await work(jobs[index] as Job, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  return { seconds: (performance.now() - started) / 1000 };
}

/** Nearest-rank percentile of latencies in ms; NaN for none. */
export function percentile(latencies: readonly number[], p: number): number {
  if (latencies.length === 0) return Number.NaN;
  const sorted = [...latencies].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}
