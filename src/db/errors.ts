/** SQLSTATE codes we act on. */
export const EXCLUSION_VIOLATION = "23P01";
export const UNIQUE_VIOLATION = "23505";

/** The SQLSTATE of a driver error, looking through drizzle's wrapper (`cause`). */
export function sqlState(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current !== "object") return undefined;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True when the database refused a value as input: a data exception (class 22: bad encoding such
 * as NUL, a cast that fails, a number or date out of range), a NOT NULL or a CHECK violation. The
 * statement changed nothing; the request, not the service, is at fault.
 */
export function isInputRejected(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith("22") || state === "23502" || state === "23514");
}

const UNAVAILABLE_ERRNO = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EPIPE",
  "EAI_AGAIN",
]);

/**
 * True when the database could not be reached, dropped the connection or rolled the transaction
 * back for want of a turn: the request changed nothing (its transaction never committed) and can
 * be retried, so it is a 503, not a 500.
 */
export function isUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  if (state?.startsWith("08") || state === "57P01" || state === "57P03" || state === "53300") return true;
  // Rolled back on a deadlock or a serialization failure even after retries: nothing changed.
  if (state !== undefined && ROLLED_BACK.has(state)) return true;
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current !== "object") return false;
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === "string" && UNAVAILABLE_ERRNO.has(code)) return true;
    if (
      typeof message === "string" &&
      /connection terminated|timeout exceeded when trying to connect|Connection refused|is not queryable/i.test(
        message,
      )
    ) {
      return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * deadlock_detected and serialization_failure: PostgreSQL rolled the whole transaction back, so
 * running it again is safe. Exclusion constraints make such deadlocks a normal event: a claim being
 * cut or stretched and a new claim on the same seat, checked at the same instant, wait for each other.
 */
export const ROLLED_BACK = new Set(["40P01", "40001"]);
