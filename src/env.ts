import { z } from "zod";

/** The only module that knows the names of environment variables. */

const optionalUrl = z.url().optional();
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: optionalUrl,
  DATABASE_POOL_SIZE: positiveInt(10),
  NEON_WEBSOCKET_PROXY: z.url({ protocol: /^wss?$/, error: "must be a ws:// or wss:// URL" }).optional(),
  DATA_DIR: z.string().min(1).default("./.data"),
  REDIS_URL: optionalUrl,
  UPSTASH_REDIS_REST_URL: optionalUrl,
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  SEAT_LOCK_TIMEOUT_MS: positiveInt(300),
  SEAT_LOCK_COOLDOWN_MS: positiveInt(5000),
  SEAT_REFUSAL_CACHE_MS: z.coerce.number().int().min(0).default(500),
  AMQP_URL: optionalUrl,
  QSTASH_TOKEN: z.string().min(1).optional(),
  QSTASH_URL: z.url().default("https://qstash.upstash.io"),
  QSTASH_CURRENT_SIGNING_KEY: z.string().min(1).optional(),
  QSTASH_NEXT_SIGNING_KEY: z.string().min(1).optional(),
  PUBLIC_BASE_URL: optionalUrl,
  RESERVATION_TTL_SECONDS: positiveInt(30),
  EXPIRY_SWEEP_INTERVAL_MS: positiveInt(5000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Config = {
  port: number;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** A WebSocket proxy (ws:// or wss://) in front of PostgreSQL; set, the edge uses the neon-serverless driver. */
  neonWebSocketProxy: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  upstash: { url: string; token: string } | undefined;
  /** Redis seat-lock calls fail over to advisory locks after `timeoutMs`; Redis is retried after `cooldownMs`. */
  seatLock: { timeoutMs: number; cooldownMs: number };
  /** How long seats found taken are refused from memory (0: never). */
  seatRefusalCacheMs: number;
  amqpUrl: string | undefined;
  /** Hold expiry through QStash delayed callbacks to `publicBaseUrl`; the sweeper alone when absent. */
  qstash: QStashConfig | undefined;
  reservationTtlSeconds: number;
  expirySweepIntervalMs: number;
  logLevel: z.infer<typeof schema>["LOG_LEVEL"];
};

export type QStashConfig = {
  url: string;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  publicBaseUrl: string;
};

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
  if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN)) {
    throw new ConfigError(
      "Invalid configuration: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together",
    );
  }
  return {
    port: env.PORT,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    neonWebSocketProxy: env.NEON_WEBSOCKET_PROXY,
    dataDir: env.DATA_DIR,
    redisUrl: env.REDIS_URL,
    upstash:
      env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN
        ? { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }
        : undefined,
    seatLock: { timeoutMs: env.SEAT_LOCK_TIMEOUT_MS, cooldownMs: env.SEAT_LOCK_COOLDOWN_MS },
    seatRefusalCacheMs: env.SEAT_REFUSAL_CACHE_MS,
    amqpUrl: env.AMQP_URL,
    qstash: qstashConfig(env),
    reservationTtlSeconds: env.RESERVATION_TTL_SECONDS,
    expirySweepIntervalMs: env.EXPIRY_SWEEP_INTERVAL_MS,
    logLevel: env.LOG_LEVEL,
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

/** Workers, Deno and Bun have no embedded database: they need DATABASE_URL. */
export function edgeDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError(
      "Invalid configuration: DATABASE_URL: required on Workers, Deno and Bun (the embedded database is Node-only)",
    );
  }
  return config.databaseUrl;
}

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
