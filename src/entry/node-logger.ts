import { AsyncLocalStorage } from "node:async_hooks";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import type { AccessLine } from "../ports.ts";
import { scrubFields, scrubSecrets, scrubText } from "./scrub-secrets.ts";

const requestScope = new AsyncLocalStorage<Record<string, unknown>>();
const NO_BINDINGS: Record<string, unknown> = Object.freeze({});

/**
 * pino's `isoTime`, formatted once per millisecond: under load many lines share one, and
 * `toISOString` was a visible part of every request.
 */
function isoTimeOncePerMs(): () => string {
  let lastMs = -1;
  let last = "";
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      last = `,"time":"${new Date(now).toISOString()}"`;
    }
    return last;
  };
}

/** Runs `run` with `bindings` (the request id) added to every line any Node logger writes meanwhile. */
export function runInRequestScope<T>(bindings: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
  return requestScope.run(bindings, run);
}

/**
 * The access line written straight onto `logger`'s stream, as pino would write it (same fields,
 * order, time and base bindings, same level filter), without pino's per-line work: its hook, mixin,
 * merge, formatters and serializer took a tenth of a refused hold's CPU. Nothing here needs
 * scrubbing: a request id is a uuid or matched `[\w\-=]` (no credential pattern can match those
 * characters), the method is an HTTP token, the route a template of ours.
 *
 * The lines of one turn of the event loop go out in one write: under load that turn answered many
 * requests, and each write of its own was a trip through libuv's thread pool. They are at most one
 * turn late, and written out at exit.
 */
export function createAccessLog(logger: Logger): (line: AccessLine) => void {
  const stream = (logger as unknown as Record<symbol, DestinationStream & { flushSync?(): void }>)[
    pino.symbols.streamSym
  ];
  const base = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym];
  if (!stream || typeof base !== "string") return ({ level, msg, ...fields }) => logger[level](fields, msg);
  const time = isoTimeOncePerMs();
  let pending = "";
  const flush = () => {
    const lines = pending;
    pending = "";
    if (lines !== "") stream.write(lines);
  };
  process.once("exit", () => {
    flush();
    stream.flushSync?.();
  });
  return (line) => {
    if (!logger.isLevelEnabled(line.level)) return;
    if (pending === "") setImmediate(flush);
    pending += `{"level":"${line.level}"${time()}${base},"requestId":${JSON.stringify(line.requestId)},"method":${JSON.stringify(line.method)},"route":${JSON.stringify(line.route)},"status":${line.status},"ms":${line.ms},"msg":"${line.msg}"}\n`;
  };
}

/** The Node logger: pino JSON lines on stdout, every field and message through `scrubSecrets`. */
export function createNodeLogger(level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: "seat-reservation" },
    mixin: () => requestScope.getStore() ?? NO_BINDINGS,
    // The line's own fields win; the request's bindings are never written into (pino's default
    // merge assigns the fields onto the mixin's object, which is the request scope's own).
    mixinMergeStrategy: (fields, bindings) =>
      bindings === NO_BINDINGS ? fields : { ...bindings, ...fields },
    // `formatters.log` already turned errors into scrubbed plain objects; keep them as they are.
    serializers: { err: (value: unknown) => value },
    timestamp: isoTimeOncePerMs(),
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => scrubSecrets(bindings) as Record<string, unknown>,
      log: (object) => scrubFields(object),
    },
    hooks: {
      // The message string is not seen by `formatters.log`.
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) {
          const arg = args[i];
          if (typeof arg === "string") args[i] = scrubText(arg);
        }
        method.apply(this, args);
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
