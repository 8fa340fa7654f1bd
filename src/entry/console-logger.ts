import type { Logger } from "../ports.ts";
import { scrubSecrets, scrubText } from "./scrub-secrets.ts";

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;

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
      ...(scrubSecrets(object) as object),
      msg: message === undefined ? undefined : scrubText(message),
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
