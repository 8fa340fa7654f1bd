import { describeMigrations, migratePostgres } from "../db/migrate-node.ts";
import { edgeDatabaseUrl, parseEnv } from "../env.ts";
import { createNodeLogger } from "./node-logger.ts";
import { databaseName, describeDatabaseFailure, exitOnStartupFailure } from "./startup.ts";

/**
 * `npm run db:migrate`: applies the drizzle/ migrations to DATABASE_URL, from Node. The Node server
 * migrates at start; Workers, Deno and Bun never do (drizzle's migrator reads files with node:fs),
 * so a deployment there runs this first, from CI or a developer machine.
 */
const logger = createNodeLogger("info");
let url: string;
try {
  url = edgeDatabaseUrl(parseEnv(process.env));
} catch (error) {
  exitOnStartupFailure(error, logger);
}
try {
  const migrations = await migratePostgres(url);
  logger.info({ migrations: describeMigrations(migrations) }, `migrations applied to ${databaseName(url)}`);
} catch (error) {
  exitOnStartupFailure(describeDatabaseFailure(error, url), logger);
}
