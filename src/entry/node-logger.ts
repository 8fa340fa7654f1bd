import { AsyncLocalStorage } from "node:async_hooks";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";

/**
 * The Node logger: pino JSON lines on stdout. Secrets never reach a line: fields whose name says
 * secret (password, token, authorization, cookie, signing keys, ...) are censored wherever they
 * sit, and credentials inside strings (`postgres://user:pw@host`, `Bearer ...`, `?token=`) are
 * masked, because driver error messages and URLs can carry them in places no path list foresees.
 */
const SECRET_KEY =
  /(pass(word|wd)?|secret|token|authorization|cookie|api[-_]?key|signing[-_]?key|credentials?)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s@/]+)@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const QUERY_SECRET = /([?&](?:token|access_token|key|signature|password)=)[^&\s]+/gi;
/** Every pattern above needs one of these literals; most strings (ids, routes) have none. */
const MAYBE_CREDENTIALS = /:\/\/|bearer|basic|[?&](?:token|access_token|key|signature|password)=/i;
const CENSORED = "[redacted]";
const MAX_DEPTH = 6;

export function scrubText(text: string): string {
  if (!MAYBE_CREDENTIALS.test(text)) return text;
  return text
    .replace(URL_CREDENTIALS, `$1$2:${CENSORED}@`)
    .replace(BEARER, `$1 ${CENSORED}`)
    .replace(QUERY_SECRET, `$1${CENSORED}`);
}

/** A copy of `value` with secret fields censored and credentials in strings masked. */
export function scrubSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrubText(value);
  if (value === null || typeof value !== "object" || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => scrubSecrets(item, depth + 1));
  const source =
    value instanceof Error
      ? { ...value, type: value.name, message: value.message, stack: value.stack, cause: value.cause }
      : (value as Record<string, unknown>);
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(source)) {
    copy[key] =
      SECRET_KEY.test(key) && field != null && field !== "" ? CENSORED : scrubSecrets(field, depth + 1);
  }
  return copy;
}

const requestScope = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs `run` with `bindings` (the request id) added to every line any Node logger writes meanwhile. */
export function runInRequestScope<T>(bindings: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
  return requestScope.run(bindings, run);
}

export function createNodeLogger(level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    // Child bindings skip `formatters`; these paths cover the secret fields a child may be bound with.
    redact: {
      paths: ["password", "token", "authorization", "cookie", "*.password", "*.token"],
      censor: CENSORED,
    },
    base: { service: "seat-reservation" },
    mixin: () => requestScope.getStore() ?? {},
    // `formatters.log` already turned errors into scrubbed plain objects; keep them as they are.
    serializers: { err: (value: unknown) => value },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => scrubSecrets(bindings) as Record<string, unknown>,
      log: (object) => scrubSecrets(object) as Record<string, unknown>,
    },
    hooks: {
      // The message string is not seen by `formatters.log`.
      logMethod(args, method) {
        const scrubbed = args.map((arg) => (typeof arg === "string" ? scrubText(arg) : arg));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  // Asynchronous stdout: lines logged while a write is in flight go out in one write, instead of
  // one blocking write per line; pino flushes what is left when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
