import { PGlite } from "@electric-sql/pglite";
import { btree_gist } from "@electric-sql/pglite/contrib/btree_gist";
import { drizzle } from "drizzle-orm/pglite";
import type { Database } from "./database.ts";
import * as schema from "./schema.ts";

/**
 * Embedded PostgreSQL (PGlite): one connection, so transactions run one at a time. `dataDir`
 * undefined keeps everything in memory (tests); a path keeps data across restarts.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<{
  db: Database;
  close: () => Promise<void>;
  /** NOTIFY on `channel` by any statement of this database calls `onNotify`. */
  listen: (channel: string, onNotify: () => void) => Promise<() => Promise<void>>;
}> {
  const client = await PGlite.create({ dataDir, extensions: { btree_gist } });
  const db = drizzle({ client, schema }) as unknown as Database;
  return {
    db,
    close: () => client.close(),
    listen: async (channel, onNotify) => {
      const unlisten = await client.listen(channel, () => onNotify());
      return () => unlisten();
    },
  };
}
