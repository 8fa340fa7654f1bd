import pg from "pg";
import type { Database } from "../../src/db/database.ts";
import { migrateEmbedded, migratePostgres } from "../../src/db/migrate-node.ts";
import { createNodePostgresDatabase } from "../../src/db/node-postgres.ts";
import { createPgliteDatabase } from "../../src/db/pglite.ts";
import { serviceUrl } from "./services.ts";

export type DriverName = "pglite" | "postgres";

export type TestDatabase = {
  driver: DriverName;
  db: Database;
  /** The database's own URL (postgres only): for server processes and direct checks. */
  url?: string;
  close: () => Promise<void>;
};

/** The drivers the shared suites run against: PGlite always, PostgreSQL when TEST_DATABASE_URL is set. */
export function availableDrivers(): DriverName[] {
  return serviceUrl("TEST_DATABASE_URL") ? ["pglite", "postgres"] : ["pglite"];
}

/** A fresh, migrated database of its own: no suite ever sees another suite's rows. */
export async function openTestDatabase(driver: DriverName, poolSize = 20): Promise<TestDatabase> {
  if (driver === "pglite") {
    const embedded = await createPgliteDatabase();
    await migrateEmbedded(embedded.db);
    return { driver, ...embedded };
  }
  const adminUrl = serviceUrl("TEST_DATABASE_URL");
  if (!adminUrl) throw new Error("TEST_DATABASE_URL is required for the postgres driver");
  const url = await createScratchDatabase(adminUrl);
  await migratePostgres(url);
  const { db, close } = createNodePostgresDatabase(url, poolSize);
  return {
    driver,
    db,
    url,
    close: async () => {
      await close();
      await dropScratchDatabase(adminUrl, url);
    },
  };
}

export async function createScratchDatabase(adminUrl: string): Promise<string> {
  const name = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropScratchDatabase(adminUrl: string, url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

async function withAdmin<T>(adminUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}
