import { migratePostgres } from "../db/migrate-node.ts";
import { ConfigError, edgeDatabaseUrl, parseEnv } from "../env.ts";

/**
 * `npm run db:migrate`: applies the drizzle/ migrations to DATABASE_URL, from Node. The Node server
 * migrates at start; Workers, Deno and Bun never do (drizzle's migrator reads files with node:fs),
 * so a deployment there runs this first, from CI or a developer machine.
 */
try {
  const url = edgeDatabaseUrl(parseEnv(process.env));
  await migratePostgres(url);
  console.log(`migrations applied to ${new URL(url).host}${new URL(url).pathname}`);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
