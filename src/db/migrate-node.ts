import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
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

/**
 * Applies pending migrations to a PostgreSQL server. Instances that start together queue on a
 * session advisory lock, so exactly one applies them and the others find them applied.
 */
export async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    await migrateNodePostgres(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.end();
  }
}

/** Applies pending migrations to an embedded PGlite database (a single process owns it). */
export async function migrateEmbedded(db: Database): Promise<void> {
  const { migrate: migratePglite } = await import("drizzle-orm/pglite/migrator");
  await migratePglite(db as unknown as PgliteDatabase, { migrationsFolder: MIGRATIONS_FOLDER });
}
