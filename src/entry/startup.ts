import type { AddressInfo } from "node:net";
import { ConfigError } from "../env.ts";

/**
 * Start-up failures of the Node processes (API, sidecar, db:migrate). Each becomes one log line
 * that says what is wrong and what to do, and exit code 1: a stack trace tells an operator nothing
 * that this line does not, and the raw driver messages (`ECONNREFUSED`, `3D000`) name no variable.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

type Fatal = { fatal(object: Record<string, unknown>, message?: string): void };

/** Writes the one line and exits; pino flushes its buffer on exit. */
export function exitOnStartupFailure(error: unknown, logger: Fatal): never {
  const message =
    error instanceof StartupError || error instanceof ConfigError
      ? error.message
      : `Start-up failed: ${error instanceof Error ? error.message : String(error)}`;
  logger.fatal({}, message);
  process.exit(1);
}

type ListeningServer = {
  listen(port: number, host: string): unknown;
  once(event: "listening", listener: () => void): unknown;
  once(event: "error", listener: (error: NodeJS.ErrnoException) => void): unknown;
  removeListener(event: "error", listener: (error: NodeJS.ErrnoException) => void): unknown;
  address(): AddressInfo | string | null;
};

/** Binds `host:port` and answers the address actually bound, or a StartupError naming the fix. */
export function listen(server: ListeningServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(describeListenFailure(error, port, host));
    server.once("error", onError);
    server.once("listening", () => {
      server.removeListener("error", onError);
      resolve(server.address() as AddressInfo);
    });
    server.listen(port, host);
  });
}

function describeListenFailure(error: NodeJS.ErrnoException, port: number, host: string): StartupError {
  const where = `${host}:${port}`;
  switch (error.code) {
    case "EADDRINUSE":
      return new StartupError(
        `Cannot listen on ${where}: the address is already in use (EADDRINUSE); stop the process that holds it or set PORT to a free port`,
      );
    case "EACCES":
      return new StartupError(
        `Cannot listen on ${where}: permission denied (EACCES); set PORT to 1024 or above`,
      );
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StartupError(
        `Cannot listen on ${where}: ${host} is not an address of this machine (${error.code}); set HOST to one of its addresses, 127.0.0.1 or 0.0.0.0`,
      );
    default:
      return new StartupError(`Cannot listen on ${where}: ${error.message}`);
  }
}

/** The bound address as a URL: `http://127.0.0.1:3000`, `http://[::1]:3000`. */
export function addressUrl(address: AddressInfo): string {
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** `host:port/database` of a PostgreSQL URL: names the server without its credentials. */
export function databaseName(url: string): string {
  const parsed = new URL(url);
  return `${parsed.host || "localhost"}${parsed.pathname}`;
}

/**
 * Why a PostgreSQL server cannot be used, as a StartupError naming `DATABASE_URL`. The codes are
 * node-postgres's socket errors and PostgreSQL's SQLSTATEs (3D000 unknown database, 28xxx auth).
 */
export function describeDatabaseFailure(error: unknown, url: string): StartupError {
  const where = databaseName(url);
  const code = findCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const database = new URL(url).pathname.slice(1) || "(the user's name)";
  switch (code) {
    case "ECONNREFUSED":
      return new StartupError(
        `DATABASE_URL: nothing accepts connections at ${where} (ECONNREFUSED); start PostgreSQL there or fix the host and port`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StartupError(`DATABASE_URL: the host of ${where} is not known (${code}); fix the host name`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new StartupError(
        `DATABASE_URL: ${where} cannot be reached (${code}); check the host, the port and the network`,
      );
    case "3D000":
      return new StartupError(
        `DATABASE_URL: database "${database}" does not exist on ${where}; create it (createdb ${database}) or name an existing one`,
      );
    case "28P01":
    case "28000":
      return new StartupError(
        `DATABASE_URL: ${where} refused the credentials (${code}: ${message}); fix the user or password`,
      );
    case "57P03":
      return new StartupError(
        `DATABASE_URL: ${where} is starting up or shutting down (57P03); start again once it accepts connections`,
      );
    case "53300":
      return new StartupError(
        `DATABASE_URL: ${where} has no connection slot left (53300); lower DATABASE_POOL_SIZE or raise max_connections`,
      );
  }
  if (/terminated unexpectedly/i.test(message)) {
    return new StartupError(
      `DATABASE_URL: ${where} closed the connection before answering; check that PostgreSQL, not another service, listens there`,
    );
  }
  if (/timeout/i.test(message)) {
    return new StartupError(
      `DATABASE_URL: ${where} did not answer within 10 s; check that PostgreSQL runs there and the network lets it through`,
    );
  }
  return new StartupError(`DATABASE_URL: cannot use ${where}: ${message}; check the URL and the server`);
}

/** The first `code` along the `cause` chain (drizzle wraps driver errors; pg pools aggregate them). */
function findCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const nested = (current as { errors?: unknown[] }).errors;
    if (Array.isArray(nested) && nested.length > 0) current = nested[0];
    else current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
