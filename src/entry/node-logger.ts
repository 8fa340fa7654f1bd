import { AsyncLocalStorage } from "node:async_hooks";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { scrubSecrets, scrubText } from "./scrub-secrets.ts";

const requestScope = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs `run` with `bindings` (the request id) added to every line any Node logger writes meanwhile. */
export function runInRequestScope<T>(bindings: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
  return requestScope.run(bindings, run);
}

/** The Node logger: pino JSON lines on stdout, every field and message through `scrubSecrets`. */
export function createNodeLogger(level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
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
  const logger = pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
  // A child's bindings skip `formatters`: they are scrubbed on the way in. Children are created from
  // their parent's prototype, so grandchildren inherit this `child` too.
  const child = logger.child;
  logger.child = function scrubbedChild(this: Logger, bindings, childOptions) {
    return child.call(this, scrubSecrets(bindings) as typeof bindings, childOptions);
  } as Logger["child"];
  return logger;
}
