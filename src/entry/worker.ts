import { createApp } from "../app.ts";
import { expireAllOverdueHolds, pruneIdempotencyKeys } from "../booking/expire.ts";
import { type Config, ConfigError, parseEnv } from "../env.ts";
import { createConsoleLogger } from "./console-logger.ts";
import { createEdgeServices, type EdgeServices, edgeDeps, openEdgeDatabase } from "./edge.ts";

/** The slices of the Workers runtime types this entry uses. */
type ExecutionContext = { waitUntil(promise: Promise<unknown>): void };
type ScheduledController = { cron: string; scheduledTime: number };
type WorkerEnv = Record<string, unknown>;

/**
 * Cloudflare Workers. A database client cannot outlive the request that opened it (a `pg` client
 * kept at module level hangs on the next request), so each request and each cron run opens its
 * own pool and closes it after the response. Fetch-based clients (Upstash REST seat locks, QStash)
 * and the parsed configuration are kept for the isolate.
 */
let isolate: { env: WorkerEnv; config: Config; services: EdgeServices } | undefined;

function setUp(env: WorkerEnv): { config: Config; services: EdgeServices } {
  if (isolate?.env === env) return isolate;
  const variables = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
  const config = parseEnv(variables);
  const services = createEdgeServices(
    config,
    createConsoleLogger(config.logLevel),
    (request) => request.headers.get("cf-connecting-ip") ?? undefined,
  );
  isolate = { env, config, services };
  return isolate;
}

/** A Worker cannot refuse to start: a bad configuration answers every request with its message. */
function misconfigured(error: ConfigError): Response {
  console.error(error.message);
  const body = {
    type: "/problems/misconfigured",
    title: "Service misconfigured",
    status: 500,
    detail: error.message,
    code: "MISCONFIGURED",
  };
  return new Response(JSON.stringify(body), {
    status: 500,
    headers: { "content-type": "application/problem+json" },
  });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    let setup: ReturnType<typeof setUp>;
    let database: ReturnType<typeof openEdgeDatabase>;
    try {
      setup = setUp(env);
      database = openEdgeDatabase(setup.config, { poolSize: 2 });
    } catch (error) {
      if (error instanceof ConfigError) return misconfigured(error);
      throw error;
    }
    try {
      return await createApp(edgeDeps(setup.services, database.db)).fetch(request);
    } finally {
      ctx.waitUntil(database.close());
    }
  },

  /** The Cron Trigger: the sweeper's work, for holds no QStash callback expired. */
  async scheduled(controller: ScheduledController, env: WorkerEnv): Promise<void> {
    const { config, services } = setUp(env);
    const database = openEdgeDatabase(config, { poolSize: 1 });
    try {
      const expired = await expireAllOverdueHolds(database.db, undefined, services.seatLock);
      const pruned = await pruneIdempotencyKeys(database.db);
      services.logger.info({ cron: controller.cron, expired, prunedIdempotencyKeys: pruned }, "cron sweep");
    } finally {
      await database.close();
    }
  },
};
