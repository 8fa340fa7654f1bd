/**
 * What PostgreSQL accepts, checked before a value is sent: a value that fails one of these would
 * either make the statement fail or be stored as something other than what was sent.
 */

/**
 * `text` cannot hold NUL, and an unpaired UTF-16 surrogate has no UTF-8 form (the driver would
 * store U+FFFD in its place without a word). With the `u` flag a well-formed pair is one code
 * point and does not match `\p{Cs}`; only a lone surrogate does.
 */
const LONE_SURROGATE = /\p{Cs}/u;

export function isStorableText(text: string): boolean {
  return !text.includes("\u0000") && !LONE_SURROGATE.test(text);
}

/**
 * Instants from the Unix epoch to the end of year 9999: PostgreSQL has no year 0 and JavaScript
 * writes years past 9999 with a sign, so only this range reads the same on both sides (and no
 * cinema session lies outside it).
 */
export const EARLIEST_INSTANT = Date.UTC(1970, 0, 1);
export const LATEST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function isStorableInstant(epochMs: number): boolean {
  return Number.isFinite(epochMs) && epochMs >= EARLIEST_INSTANT && epochMs <= LATEST_INSTANT;
}

/** The canonical form PostgreSQL's uuid input accepts (it takes others too; we issue only this). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isStorableUuid(text: string): boolean {
  return UUID.test(text);
}
