import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, transactionRetried } from "../src/db/database.ts";
import { isUnavailable, sqlState } from "../src/db/errors.ts";
import { createNodePostgresDatabase } from "../src/db/node-postgres.ts";
import { createScratchDatabase, dropScratchDatabase } from "./support/database.ts";
import { serviceUrl } from "./support/services.ts";

/**
 * A deadlock is an ordinary event under exclusion constraints (a claim being cut or stretched and a
 * new claim on its seat, checked at the same instant, wait for each other): PostgreSQL rolls one
 * transaction back, and the booking transactions run again instead of answering 500. Here a real
 * deadlock is made with two rows locked in opposite orders by the helper and by another connection.
 */
const adminUrl = serviceUrl("TEST_DATABASE_URL");

describe.skipIf(!adminUrl)("transactions PostgreSQL rolls back on a deadlock", () => {
  let url: string;
  let database: ReturnType<typeof createNodePostgresDatabase>;
  let other: pg.Client;

  beforeAll(async () => {
    url = await createScratchDatabase(adminUrl as string);
    database = createNodePostgresDatabase(url, 2);
    await database.db.execute(sql`CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`);
    await database.db.execute(sql`INSERT INTO counters VALUES (1, 0), (2, 0)`);
    other = new pg.Client({ connectionString: url });
    await other.connect();
    // The other side waits longer before its deadlock check, so the helper's transaction is the victim.
    await other.query("SET deadlock_timeout = '5s'");
  });
  afterAll(async () => {
    await other?.end();
    await database?.close();
    if (url) await dropScratchDatabase(adminUrl as string, url);
  });

  /** Locks row 2 on the other connection; once `work` holds row 1, the other side asks for row 1 too. */
  async function deadlockOnce(work: (lockRow2: () => Promise<void>) => Promise<unknown>) {
    await other.query("BEGIN");
    await other.query("UPDATE counters SET n = n + 1 WHERE id = 2");
    let otherDone: Promise<unknown> | undefined;
    const outcome = work(async () => {
      // Waits for `work`'s row 1, then commits, so a retry of `work` can go on.
      otherDone = other.query("UPDATE counters SET n = n + 1 WHERE id = 1").then(() => other.query("COMMIT"));
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    const settled = await outcome.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await otherDone;
    return settled;
  }

  it("a bare transaction that loses a deadlock fails with 40P01, which the API answers as 503", async () => {
    const settled = await deadlockOnce((afterFirstLock) =>
      database.db.transaction(async (tx) => {
        await tx.execute(sql`UPDATE counters SET n = n + 10 WHERE id = 1`);
        await afterFirstLock();
        await tx.execute(sql`UPDATE counters SET n = n + 10 WHERE id = 2`);
      }),
    );
    expect("error" in settled && sqlState(settled.error)).toBe("40P01");
    expect("error" in settled && isUnavailable(settled.error)).toBe(true);
  });

  it("transactionRetried runs the rolled-back transaction again, and it commits once", async () => {
    const before = await queryRows<{ id: number; n: number }>(
      database.db,
      sql`SELECT id, n FROM counters ORDER BY id`,
    );
    let attempts = 0;
    const settled = await deadlockOnce((afterFirstLock) =>
      transactionRetried(database.db, async (tx) => {
        attempts += 1;
        await tx.execute(sql`UPDATE counters SET n = n + 10 WHERE id = 1`);
        if (attempts === 1) await afterFirstLock();
        await tx.execute(sql`UPDATE counters SET n = n + 10 WHERE id = 2`);
        return attempts;
      }),
    );
    // Usually the second try commits. A row freed by the rolled-back try can go to the second try
    // before the other side that was waiting for it; the two then deadlock again, the second try
    // loses too, and the third commits (transactionRetried makes three at most).
    expect("value" in settled && [2, 3].includes(settled.value as number)).toBe(true);
    const after = await queryRows<{ id: number; n: number }>(
      database.db,
      sql`SELECT id, n FROM counters ORDER BY id`,
    );
    // The other side's +1 on each row and the retried transaction's +10 on each row, nothing twice.
    expect(after.map((row) => row.n - (before.find((b) => b.id === row.id)?.n ?? 0))).toEqual([11, 11]);
  });
});
