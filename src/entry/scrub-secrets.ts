/**
 * The one secret scrubber of both loggers (pino on Node, the console logger of Workers, Deno and
 * Bun); Web APIs only. Fields whose name says secret (password, token, authorization, cookie,
 * signing keys, ...) are censored wherever they sit, and credentials inside strings
 * (`postgres://user:pw@host`, `Bearer ...`, `?token=`) are masked, because driver error messages
 * and URLs carry them in places no list of field paths foresees.
 */
const SECRET_KEY =
  /(pass(word|wd)?|secret|token|authorization|cookie|api[-_]?key|signing[-_]?key|signature|credentials?)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s@/]+)@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const QUERY_SECRET = /([?&](?:token|access_token|key|signature|password)=)[^&\s]+/gi;
/** Every pattern above needs one of these literals; most strings (ids, routes) have none. */
const MAYBE_CREDENTIALS = /:\/\/|bearer|basic|[?&](?:token|access_token|key|signature|password)=/i;
export const CENSORED = "[redacted]";
const MAX_DEPTH = 6;

export function scrubText(text: string): string {
  if (!MAYBE_CREDENTIALS.test(text)) return text;
  return text
    .replace(URL_CREDENTIALS, `$1$2:${CENSORED}@`)
    .replace(BEARER, `$1 ${CENSORED}`)
    .replace(QUERY_SECRET, `$1${CENSORED}`);
}

/**
 * True when `scrubSecrets` would change nothing in `fields`: only primitives, no field named like a
 * secret, no string with a credential's literal. Most lines (the access log) are such; they are
 * written as they are instead of copied.
 */
function isCleanFlat(fields: Record<string, unknown>): boolean {
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) continue;
    const field = fields[key];
    if (typeof field === "string") {
      if (MAYBE_CREDENTIALS.test(field)) return false;
    } else if (field !== null && typeof field === "object") return false;
    if (SECRET_KEY.test(key)) return false;
  }
  return true;
}

/** `scrubSecrets` for a log line's fields: the same object when nothing in it needs scrubbing. */
export function scrubFields(fields: Record<string, unknown>): Record<string, unknown> {
  return isCleanFlat(fields) ? fields : (scrubSecrets(fields) as Record<string, unknown>);
}

/** A copy of `value` with secret fields censored, credentials in strings masked, errors as plain fields. */
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
