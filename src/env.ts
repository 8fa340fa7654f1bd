import { z } from "zod";
import type { AuthConfig } from "./auth/jwt-verifier.ts";
import type { RateRules } from "./auth/rate-limit.ts";

/** The only module that knows the names of environment variables. */

/** A URL of one of `schemes`; the message says what is expected and what to do, never the value. */
const urlOf = (schemes: string[], hint: string) =>
  z
    .url({
      protocol: new RegExp(`^(${schemes.join("|")})$`),
      error: `must be ${/^[aeiou]/.test(schemes[0] ?? "") ? "an" : "a"} ${schemes.map((scheme) => `${scheme}://`).join(" or ")} URL; ${hint}`,
    })
    .optional();
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** The address to bind: loopback by default (the Docker image sets 0.0.0.0). */
  HOST: z
    .string()
    .trim()
    .min(1, "must name the address to bind, e.g. 127.0.0.1 or 0.0.0.0")
    .default("127.0.0.1"),
  DATABASE_URL: urlOf(
    ["postgres", "postgresql"],
    "e.g. postgres://user@localhost:5432/cinema, or unset it for the embedded database",
  ),
  DATABASE_POOL_SIZE: positiveInt(10),
  NEON_WEBSOCKET_PROXY: z.url({ protocol: /^wss?$/, error: "must be a ws:// or wss:// URL" }).optional(),
  DATA_DIR: z.string().min(1).default("./.data"),
  REDIS_URL: urlOf(
    ["redis", "rediss"],
    "e.g. redis://localhost:6379, or unset it for PostgreSQL advisory locks",
  ),
  REDIS_CLUSTER_NODES: z
    .string()
    .refine(
      (text) => parseClusterNodes(text) !== undefined,
      "must be comma-separated host:port or redis://[user:password@]host:port entries of the cluster's nodes, e.g. 10.0.0.1:7000,10.0.0.2:7000",
    )
    .optional(),
  UPSTASH_REDIS_REST_URL: urlOf(["https", "http"], "the REST URL from the Upstash console"),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  SEAT_LOCK_TIMEOUT_MS: positiveInt(300),
  SEAT_LOCK_COOLDOWN_MS: positiveInt(5000),
  SEAT_REFUSAL_CACHE_MS: z.coerce.number().int().min(0).default(500),
  AMQP_URL: urlOf(["amqp", "amqps"], "e.g. amqp://localhost:5672, or unset it to keep events in the outbox"),
  QSTASH_TOKEN: z.string().min(1).optional(),
  QSTASH_URL: z
    .url({
      protocol: /^https?$/,
      error: "must be an https:// or http:// URL; unset it for https://qstash.upstash.io",
    })
    .default("https://qstash.upstash.io"),
  QSTASH_CURRENT_SIGNING_KEY: z.string().min(1).optional(),
  QSTASH_NEXT_SIGNING_KEY: z.string().min(1).optional(),
  PUBLIC_BASE_URL: urlOf(["https", "http"], "the address at which QStash reaches this service"),
  RESERVATION_TTL_SECONDS: positiveInt(30),
  HOLD_MAX_SECONDS: positiveInt(600),
  EXPIRY_SWEEP_INTERVAL_MS: positiveInt(5000),
  HTTP_HEADERS_TIMEOUT_MS: positiveInt(5000),
  HTTP_REQUEST_TIMEOUT_MS: positiveInt(30000),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  AUTH_JWKS_URL: z
    .url({ protocol: /^https?$/, error: "must be the https:// URL of a JSON Web Key Set" })
    .optional(),
  AUTH_JWT_SECRET: z.string().min(32, "must be at least 32 characters (256 bits) for HS256").optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_ROLES_CLAIM: z.string().min(1).default("roles"),
  AUTH_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  CORS_ORIGINS: z.string().optional(),
  CORS_CREDENTIALS: z.enum(["true", "false"], { error: "must be true or false" }).default("false"),
  RATE_LIMITS: z.enum(["on", "off"], { error: "must be on or off" }).optional(),
  RATE_LIMIT_WINDOW_SECONDS: positiveInt(60),
  RATE_LIMIT_HOLDS: z.coerce.number().int().min(0).default(30),
  RATE_LIMIT_PAYMENTS: z.coerce.number().int().min(0).default(30),
  RATE_LIMIT_SESSIONS: z.coerce.number().int().min(0).default(10),
  RATE_LIMIT_READS: z.coerce.number().int().min(0).default(600),
  CLIENT_IP_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, "must be a header name, e.g. x-forwarded-for or cf-connecting-ip")
    .optional(),
});

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** A WebSocket proxy (ws:// or wss://) in front of PostgreSQL; set, the edge uses the neon-serverless driver. */
  neonWebSocketProxy: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster for seat locks (REDIS_CLUSTER_NODES); the client finds the rest. */
  redisCluster: RedisClusterConfig | undefined;
  upstash: { url: string; token: string } | undefined;
  /** Redis seat-lock calls fail over to advisory locks after `timeoutMs`; Redis is retried after `cooldownMs`. */
  seatLock: { timeoutMs: number; cooldownMs: number };
  /** How long seats found taken are refused from memory (0: never). */
  seatRefusalCacheMs: number;
  amqpUrl: string | undefined;
  /** Hold expiry through QStash delayed callbacks to `publicBaseUrl`; the sweeper alone when absent. */
  qstash: QStashConfig | undefined;
  reservationTtlSeconds: number;
  /** How long after its creation an extended hold may last at most. */
  holdMaxSeconds: number;
  expirySweepIntervalMs: number;
  /** Node's HTTP server: the request head must arrive within `headersTimeoutMs`, the whole request within `requestTimeoutMs`. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number };
  /** SIGTERM or SIGINT: the process exits within this, whatever a dependency does. */
  shutdownTimeoutMs: number;
  logLevel: z.infer<typeof schema>["LOG_LEVEL"];
  /** Bearer JWTs (JWKS or HS256 secret); undefined: open mode, for local use only. */
  auth: AuthConfig | undefined;
  metricsToken: string | undefined;
  cors: { origins: string[]; credentials: boolean };
  /** Per caller and route class; undefined: nothing is limited (the default in open mode). */
  rateLimits: RateRules | undefined;
  /** A header a trusted proxy sets to the client's address (its last entry is used). */
  clientIpHeader: string | undefined;
};

export type QStashConfig = {
  url: string;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  publicBaseUrl: string;
};

export type RedisClusterConfig = {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
};

/** `host:port` or `redis(s)://[user:password@]host:port` entries; undefined if any entry is neither. */
function parseClusterNodes(text: string): RedisClusterConfig | undefined {
  const entries = text.split(",").map((entry) => entry.trim());
  const cluster: RedisClusterConfig = { nodes: [], tls: false };
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(entry) ? entry : `redis://${entry}`);
    } catch {
      return undefined;
    }
    const port = Number(url.port);
    if (!/^rediss?:$/.test(url.protocol) || !url.hostname || !Number.isInteger(port) || port < 1)
      return undefined;
    if (url.pathname !== "" && url.pathname !== "/") return undefined;
    cluster.nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port });
    if (url.protocol === "rediss:") cluster.tls = true;
    if (url.username) cluster.username = decodeURIComponent(url.username);
    if (url.password) cluster.password = decodeURIComponent(url.password);
  }
  return cluster.nodes.length > 0 ? cluster : undefined;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses a plain record (Node's environment, a Worker's env, Deno.env.toObject()) into a Config. */
export function parseEnv(record: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(record).filter(([, value]) => value !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = issue?.path.join(".") ?? "environment";
    throw new ConfigError(`Invalid configuration: ${variable}: ${issue?.message ?? "invalid value"}`);
  }
  const env = parsed.data;
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
    throw new ConfigError(
      "Invalid configuration: REDIS_URL and REDIS_CLUSTER_NODES: set one of them (a single Redis or a cluster), not both",
    );
  }
  if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN)) {
    throw new ConfigError(
      "Invalid configuration: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together",
    );
  }
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      "Invalid configuration: HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (the head is part of the request)",
    );
  }
  if (env.HOLD_MAX_SECONDS < env.RESERVATION_TTL_SECONDS) {
    throw new ConfigError(
      "Invalid configuration: HOLD_MAX_SECONDS: must be at least RESERVATION_TTL_SECONDS (a hold is never shorter than its first term)",
    );
  }
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    neonWebSocketProxy: env.NEON_WEBSOCKET_PROXY,
    dataDir: env.DATA_DIR,
    redisUrl: env.REDIS_URL,
    redisCluster: env.REDIS_CLUSTER_NODES ? parseClusterNodes(env.REDIS_CLUSTER_NODES) : undefined,
    upstash:
      env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN
        ? { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }
        : undefined,
    seatLock: { timeoutMs: env.SEAT_LOCK_TIMEOUT_MS, cooldownMs: env.SEAT_LOCK_COOLDOWN_MS },
    seatRefusalCacheMs: env.SEAT_REFUSAL_CACHE_MS,
    amqpUrl: env.AMQP_URL,
    qstash: qstashConfig(env),
    reservationTtlSeconds: env.RESERVATION_TTL_SECONDS,
    holdMaxSeconds: env.HOLD_MAX_SECONDS,
    expirySweepIntervalMs: env.EXPIRY_SWEEP_INTERVAL_MS,
    http: { headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    logLevel: env.LOG_LEVEL,
    ...accessConfig(env),
  };
}

/**
 * The sidecar relays an existing PostgreSQL outbox to RabbitMQ, so unlike the API it needs both
 * URLs; answers them or fails naming the missing variable.
 */
export function sidecarUrls(config: Config): { databaseUrl: string; amqpUrl: string } {
  if (!config.databaseUrl) {
    throw new ConfigError(
      "Invalid configuration: DATABASE_URL: required by the sidecar (the outbox to relay)",
    );
  }
  if (!config.amqpUrl) {
    throw new ConfigError(
      "Invalid configuration: AMQP_URL: required by the sidecar (the broker to publish to)",
    );
  }
  return { databaseUrl: config.databaseUrl, amqpUrl: config.amqpUrl };
}

/**
 * `npm run reconcile` reads PostgreSQL beside the running service. The embedded database belongs
 * to the one process that opened it: that service answers `GET /admin/reconcile` instead.
 */
export function reconcileDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError(
      "Invalid configuration: DATABASE_URL: required by npm run reconcile (the embedded database is the running service's own: ask it with GET /admin/reconcile)",
    );
  }
  return config.databaseUrl;
}

/** Workers, Deno and Bun have no embedded database: they need DATABASE_URL. */
export function edgeDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError(
      "Invalid configuration: DATABASE_URL: required on Workers, Deno and Bun (the embedded database is Node-only)",
    );
  }
  return config.databaseUrl;
}

function accessConfig(env: z.infer<typeof schema>) {
  if (env.AUTH_JWKS_URL && env.AUTH_JWT_SECRET) {
    throw new ConfigError(
      "Invalid configuration: AUTH_JWKS_URL and AUTH_JWT_SECRET: set one of them, not both",
    );
  }
  const auth: AuthConfig | undefined =
    env.AUTH_JWKS_URL || env.AUTH_JWT_SECRET
      ? {
          jwksUrl: env.AUTH_JWKS_URL,
          secret: env.AUTH_JWT_SECRET,
          issuer: env.AUTH_ISSUER,
          audience: env.AUTH_AUDIENCE,
          rolesClaim: env.AUTH_ROLES_CLAIM,
          clockSkewSeconds: env.AUTH_CLOCK_SKEW_SECONDS,
        }
      : undefined;
  const origins = (env.CORS_ORIGINS ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(
        `Invalid configuration: CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.example.com`,
      );
    }
  }
  const credentials = env.CORS_CREDENTIALS === "true";
  if (credentials && origins.includes("*")) {
    throw new ConfigError("Invalid configuration: CORS_CREDENTIALS: cannot be true with CORS_ORIGINS=*");
  }
  const window = env.RATE_LIMIT_WINDOW_SECONDS;
  const rule = (limit: number) => (limit > 0 ? { limit, windowSeconds: window } : undefined);
  // Limits guard an authenticated service by default; open mode is for local use and stays unlimited.
  const limited = env.RATE_LIMITS ? env.RATE_LIMITS === "on" : auth !== undefined;
  return {
    auth,
    metricsToken: env.METRICS_TOKEN,
    cors: { origins, credentials },
    rateLimits: limited
      ? {
          holds: rule(env.RATE_LIMIT_HOLDS),
          payments: rule(env.RATE_LIMIT_PAYMENTS),
          sessions: rule(env.RATE_LIMIT_SESSIONS),
          reads: rule(env.RATE_LIMIT_READS),
        }
      : undefined,
    clientIpHeader: env.CLIENT_IP_HEADER?.toLowerCase(),
  };
}

/** The one start-up warning of open mode. */
export const OPEN_MODE_WARNING =
  "auth is disabled (neither AUTH_JWKS_URL nor AUTH_JWT_SECRET is set): anyone can act as any user; use this only locally";

/** QStash is on when QSTASH_TOKEN is set; then the callbacks need signing keys and a public URL. */
function qstashConfig(env: z.infer<typeof schema>): QStashConfig | undefined {
  if (!env.QSTASH_TOKEN) return undefined;
  const required = {
    QSTASH_CURRENT_SIGNING_KEY: env.QSTASH_CURRENT_SIGNING_KEY,
    QSTASH_NEXT_SIGNING_KEY: env.QSTASH_NEXT_SIGNING_KEY,
    PUBLIC_BASE_URL: env.PUBLIC_BASE_URL,
  };
  for (const [variable, value] of Object.entries(required)) {
    if (!value)
      throw new ConfigError(`Invalid configuration: ${variable}: required when QSTASH_TOKEN is set`);
  }
  return {
    url: env.QSTASH_URL,
    token: env.QSTASH_TOKEN,
    currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY as string,
    nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY as string,
    publicBaseUrl: (env.PUBLIC_BASE_URL as string).replace(/\/+$/, ""),
  };
}
