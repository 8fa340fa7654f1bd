import { type SQL, sql } from "drizzle-orm";

/** A timestamptz as ISO-8601 UTC text with milliseconds, identical on every driver. */
export function isoTime(expression: SQL): SQL<string> {
  return sql<string>`to_char(${expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** A uuid[] parameter bound as one value, not expanded into a list. */
export function uuidArray(ids: readonly string[]): SQL {
  return sql`${sql.param(ids)}::uuid[]`;
}
