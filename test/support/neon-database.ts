import ws from "ws";
import { migratePostgres } from "../../src/db/migrate-node.ts";
import { createNeonDatabase } from "../../src/db/neon-serverless.ts";
import type { TestDatabase } from "./database.ts";
import { createScratchDatabase, dropScratchDatabase } from "./database.ts";
import { type NeonProxyStandIn, startNeonProxyStandIn } from "./neon-proxy-stand-in.ts";

/**
 * A fresh, migrated PostgreSQL database reached the way the edge reaches Neon: the real
 * @neondatabase/serverless Pool over WebSockets, through the Neon proxy stand-in. Migrations run
 * over TCP from Node, as in production.
 */
export async function openNeonTestDatabase(
  adminUrl: string,
  poolSize = 10,
): Promise<TestDatabase & { proxy: NeonProxyStandIn }> {
  const url = await createScratchDatabase(adminUrl);
  await migratePostgres(url);
  const proxy = await startNeonProxyStandIn();
  // Node 20 has no global WebSocket; Deno, Bun and workerd need no constructor.
  const { db, close } = createNeonDatabase(url, {
    poolSize,
    webSocketProxy: proxy.url,
    webSocketConstructor: ws,
  });
  return {
    driver: "postgres",
    db,
    url,
    proxy,
    close: async () => {
      await close();
      await proxy.close();
      await dropScratchDatabase(adminUrl, url);
    },
  };
}
