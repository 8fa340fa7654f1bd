import type { Logger } from "../ports.ts";

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;

const SECRET_KEY = /(pass(word|wd)?|secret|token|authorization|cookie|signing[-_]?key|signature)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s@/]+)@/gi;

/** Errors as plain fields, secret-named fields and URL passwords masked, depth bounded. */
function plain(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return value.replace(URL_CREDENTIALS, "$1$2:[redacted]@");
  if (value === null || typeof value !== "object" || depth > 5) return value;
  if (Array.isArray(value)) return value.map((item) => plain(item, depth + 1));
  const source =
    value instanceof Error
      ? { type: value.name, message: value.message, stack: value.stack, cause: value.cause }
      : (value as Record<string, unknown>);
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(source)) {
    copy[key] = SECRET_KEY.test(key) && field ? "[redacted]" : plain(field, depth + 1);
  }
  return copy;
}

/**
 * The logger of the edge runtimes (Workers, Deno, Bun): one JSON line per entry on the console,
 * which Workers Logs, `deno` and `bun` all collect. pino stays on Node.
 */
export function createConsoleLogger(level: LogLevel): Logger {
  const threshold = LEVELS[level];
  const write = (name: Exclude<LogLevel, "silent">, object: Record<string, unknown>, message?: string) => {
    if (LEVELS[name] < threshold) return;
    const line = JSON.stringify({
      level: name,
      time: new Date().toISOString(),
      ...(plain(object) as object),
      msg: message,
    });
    if (LEVELS[name] >= LEVELS.error) console.error(line);
    else if (LEVELS[name] >= LEVELS.warn) console.warn(line);
    else console.log(line);
  };
  return {
    debug: (object, message) => write("debug", object, message),
    info: (object, message) => write("info", object, message),
    warn: (object, message) => write("warn", object, message),
    error: (object, message) => write("error", object, message),
  };
}
