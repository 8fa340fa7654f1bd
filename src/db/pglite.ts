import { PGlite } from "@electric-sql/pglite";
import { btree_gist } from "@electric-sql/pglite/contrib/btree_gist";
import { drizzle } from "drizzle-orm/pglite";
import type { Database } from "./database.ts";
import * as schema from "./schema.ts";

/**
 * PostgreSQL's memory settings, sized for one embedded connection and a local data set instead of
 * a server's defaults. PGlite's memory is one WebAssembly heap that grows and never shrinks, so
 * every buffer PostgreSQL ever touches stays resident: shared_buffers (128 MB by default) and
 * maintenance_work_mem (64 MB, filled by CREATE INDEX during migrations) are most of it.
 */
const MEMORY_SETTINGS = {
  shared_buffers: "16MB",
  maintenance_work_mem: "16MB",
  work_mem: "2MB",
  temp_buffers: "2MB",
};

/**
 * Embedded PostgreSQL (PGlite): one connection, so transactions run one at a time. `dataDir`
 * undefined keeps everything in memory (tests); a path keeps data across restarts.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<{
  db: Database;
  close: () => Promise<void>;
  /** NOTIFY on `channel` by any statement of this database calls `onNotify` (live seat maps). */
  listen: (channel: string, onNotify: () => void) => Promise<() => Promise<void>>;
}> {
  const settings = Object.entries(MEMORY_SETTINGS).flatMap(([name, value]) => ["-c", `${name}=${value}`]);
  const client = await PGlite.create({
    dataDir,
    extensions: { btree_gist },
    // Start parameters replace PGlite's own; its defaults (single-user mode, no workers) stay.
    startParams: [...PGlite.defaultStartParams, ...settings],
  });
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
