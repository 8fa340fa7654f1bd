import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as migrateNodePostgres } from "drizzle-orm/node-postgres/migrator";
import type { PgliteDatabase } from "drizzle-orm/pglite";
import pg from "pg";
import type { Database } from "./database.ts";

/**
 * drizzle's migrator reads the SQL files with node:fs, so migrations run from Node only. The folder
 * sits at the project root: two levels above this source file, one above the built `dist/` bundle.
 */
export const MIGRATIONS_FOLDER = ["../../drizzle", "../drizzle"]
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((folder) => existsSync(`${folder}/meta/_journal.json`)) as string;

/** An arbitrary constant: every instance takes the same advisory lock before migrating. */
const MIGRATION_LOCK_KEY = 724_110_913;

/** For the start-up line: how many migrations this start applied, of how many, up to which. */
export type MigrationReport = { applied: number; total: number; latest: string };

/** How many migrations drizzle's bookkeeping table lists; the table is absent before the first. */
async function appliedCount(query: (text: string) => Promise<{ rows: unknown[] }>): Promise<number> {
  const [table] = (await query("SELECT to_regclass('drizzle.__drizzle_migrations') AS name")).rows as {
    name: string | null;
  }[];
  if (!table?.name) return 0;
  const [row] = (await query("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations")).rows as {
    n: number;
  }[];
  return row?.n ?? 0;
}

function report(appliedBefore: number): MigrationReport {
  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, "utf8")) as {
    entries: { tag: string }[];
  };
  const total = journal.entries.length;
  return {
    applied: Math.max(0, total - appliedBefore),
    total,
    latest: journal.entries.at(-1)?.tag ?? "none",
  };
}

export function describeMigrations({ applied, total, latest }: MigrationReport): string {
  return applied === 0
    ? `${total} migrations, none pending (latest ${latest})`
    : `${applied} of ${total} migrations applied now (latest ${latest})`;
}

/**
 * Applies pending migrations to a PostgreSQL server. Instances that start together queue on a
 * session advisory lock, so exactly one applies them and the others find them applied.
 */
export async function migratePostgres(url: string): Promise<MigrationReport> {
  // An unroutable host would otherwise hold the start for the kernel's TCP timeout (minutes).
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // A server that drops the connection later emits 'error'; the pending query rejects with it.
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    const before = await appliedCount((text) => client.query(text));
    await migrateNodePostgres(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
    return report(before);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Applies pending migrations to an embedded PGlite database (a single process owns it). */
export async function migrateEmbedded(db: Database): Promise<MigrationReport> {
  const { migrate: migratePglite } = await import("drizzle-orm/pglite/migrator");
  // PGlite's drizzle answers `execute` with `{ rows }`, as node-postgres does.
  const before = await appliedCount(
    async (text) => (await db.execute(sql.raw(text))) as unknown as { rows: unknown[] },
  );
  await migratePglite(db as unknown as PgliteDatabase, { migrationsFolder: MIGRATIONS_FOLDER });
  return report(before);
}
