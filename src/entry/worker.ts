import { AsyncLocalStorage } from "node:async_hooks";
import { createApp } from "../app.ts";
import { expireAllOverdueHolds, pruneIdempotencyKeys } from "../booking/expire.ts";
import type { Database } from "../db/database.ts";
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
 * own pool and closes it after the response. Everything else lives as long as the isolate: the
 * parsed configuration, fetch-based clients (Upstash REST seat locks, QStash) and the app itself,
 * whose `deps.db` is the database of the request being served, read from its async context.
 */
let isolate:
  | { env: WorkerEnv; config: Config; services: EdgeServices; app: ReturnType<typeof createApp> }
  | undefined;

/** The database of the request (or cron run) in progress; an isolate serves several at once. */
const requestDatabase = new AsyncLocalStorage<Database>();

/** The app's dependencies, with `db` resolved at each use to the current request's database. */
function isolateDeps(services: EdgeServices) {
  const deps = edgeDeps(services, undefined as unknown as Database);
  Object.defineProperty(deps, "db", {
    enumerable: true,
    get: () => {
      const db = requestDatabase.getStore();
      if (!db) throw new Error("the database is only open while a request is served");
      return db;
    },
  });
  return deps;
}

function setUp(env: WorkerEnv): NonNullable<typeof isolate> {
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
  isolate = { env, config, services, app: createApp(isolateDeps(services)) };
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
      return await requestDatabase.run(database.db, () => setup.app.fetch(request));
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
