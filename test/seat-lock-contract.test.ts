import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SeatClaim } from "../src/seat-lock/seat-lock.ts";
import { CLUSTER_START_MS } from "./support/redis-cluster.ts";
import { waitFor } from "./support/redis-server.ts";
import {
  attempt,
  availableLocks,
  clusterLocks,
  describeEachLock,
  inspectLock,
  type LockUnderTest,
  openLock,
  type RedisInspector,
} from "./support/seat-locks.ts";

/** Sorted seat ids, as holdSeats passes them. */
function seats(count: number): string[] {
  return Array.from({ length: count }, () => crypto.randomUUID()).sort();
}

function claimOf(seatIds: string[], overrides: Partial<SeatClaim> = {}): SeatClaim {
  return { sessionId: crypto.randomUUID(), seatIds, owner: crypto.randomUUID(), ttlMs: 10_000, ...overrides };
}

// Every lock, and the TCP lock on a three-master Redis Cluster the suite starts on loopback.
const locks = [...availableLocks(), ...clusterLocks()];

describeEachLock(locks, "seat lock contract: %s", (name) => {
  let subject: LockUnderTest;

  beforeAll(async () => {
    subject = await openLock(name);
  }, CLUSTER_START_MS);
  afterAll(() => subject.close());

  it("takes every seat of a claim or none, and names the seats someone else holds", async () => {
    const [a, b, c] = seats(3) as [string, string, string];
    const sessionId = crypto.randomUUID();
    const first = await attempt(subject, claimOf([a, b], { sessionId }));
    expect(first.acquired).toBe(true);

    const overlapping = await attempt(subject, claimOf([b, c], { sessionId }));
    expect(overlapping).toMatchObject({ acquired: false, seatIds: [b] });

    // The refused claim took nothing: its free seat is still free.
    const rest = await attempt(subject, claimOf([c], { sessionId }));
    expect(rest.acquired).toBe(true);
    await Promise.all([first.end("abort"), rest.end("abort")]);
  });

  it("lets exactly one of many concurrent claimants win, in either seat order, without waiting", async () => {
    for (let round = 0; round < 5; round++) {
      const [a, b] = seats(2) as [string, string];
      const sessionId = crypto.randomUUID();
      const started = performance.now();
      const attempts = await Promise.all(
        Array.from({ length: 24 }, (_, index) =>
          attempt(subject, claimOf(index % 2 === 0 ? [a, b] : [b, a], { sessionId })),
        ),
      );
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(attempts.filter((result) => result.acquired)).toHaveLength(1);
      for (const loser of attempts.filter((result) => !result.acquired)) {
        expect(loser.seatIds.length).toBeGreaterThan(0);
        expect([a, b]).toEqual(expect.arrayContaining(loser.seatIds));
      }
      await Promise.all(attempts.map((result) => result.end("abort")));
    }
  });

  it("frees the seats at once when the claim does not commit", async () => {
    const claim = claimOf(seats(2));
    const first = await attempt(subject, claim);
    expect(first.acquired).toBe(true);
    await first.end("abort");
    const next = await attempt(subject, { ...claim, owner: crypto.randomUUID() });
    expect(next.acquired).toBe(true);
    await next.end("abort");
  });

  it("keeps a committed hold's seats until its owner releases them; nobody else can", async () => {
    const claim = claimOf(seats(2));
    const held = await attempt(subject, claim);
    expect(held.acquired).toBe(true);
    await held.end("commit");

    await subject.lock.release({ ...claim, owner: crypto.randomUUID() });
    const intruder = await attempt(subject, { ...claim, owner: crypto.randomUUID() });
    // Redis locks stay with the hold; advisory locks ended with the transaction (the claim rows take over).
    expect(intruder.acquired).toBe(!subject.outlivesTransaction);
    await intruder.end("abort");

    await subject.lock.release(claim);
    const after = await attempt(subject, { ...claim, owner: crypto.randomUUID() });
    expect(after.acquired).toBe(true);
    await after.end("abort");
  });
});

describeEachLock(
  locks.filter((name) => name !== "advisory"),
  "redis seat lock specifics: %s",
  (name) => {
    let subject: LockUnderTest;
    let redis: RedisInspector;

    beforeAll(async () => {
      subject = await openLock(name);
      redis = await inspectLock(subject);
    }, CLUSTER_START_MS);
    afterAll(async () => {
      redis.disconnect();
      await subject.close();
    });

    it("writes one key per seat, tagged with the session so a claim's keys share a cluster slot", async () => {
      const claim = claimOf(seats(3));
      expect((await attempt(subject, claim)).acquired).toBe(true);
      const keys = (await redis.keys(`${subject.keyPrefix}{${claim.sessionId}}:*`)).sort();
      expect(keys).toEqual(claim.seatIds.map((id) => `${subject.keyPrefix}{${claim.sessionId}}:${id}`));
      for (const key of keys) expect(await redis.get(key)).toBe(claim.owner);
      await subject.lock.release(claim);
      expect(await redis.keys(`${subject.keyPrefix}{${claim.sessionId}}:*`)).toEqual([]);
    });

    it("sets the hold's TTL in milliseconds, and the lock ends with it", async () => {
      const claim = claimOf(seats(1), { ttlMs: 400 });
      expect((await attempt(subject, claim)).acquired).toBe(true);
      const ttl = await redis.pttl(`${subject.keyPrefix}{${claim.sessionId}}:${claim.seatIds[0]}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(400);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await attempt(subject, { ...claim, owner: crypto.randomUUID() })).acquired).toBe(true);
    });

    it("answers its own owner with success again, so a re-sent acquire never conflicts with itself", async () => {
      const claim = claimOf(seats(2));
      expect((await attempt(subject, claim)).acquired).toBe(true);
      expect((await attempt(subject, claim)).acquired).toBe(true);
      await subject.lock.release(claim);
    });

    it("runs the scripts by SHA once Redis knows them, and by source when it does not", async () => {
      await redis.flushScripts();
      const claim = claimOf(seats(1));
      expect((await attempt(subject, claim)).acquired).toBe(true);
      await subject.lock.release(claim);
      expect((await attempt(subject, { ...claim, owner: crypto.randomUUID() })).acquired).toBe(true);
    });
  },
);

describeEachLock(clusterLocks(), "redis cluster specifics: %s", (name) => {
  let subject: LockUnderTest;
  let masters: Redis[];

  beforeAll(async () => {
    subject = await openLock(name);
    masters = (subject.cluster?.nodes ?? []).map((node) => new Redis({ ...node, lazyConnect: false }));
    for (const master of masters) master.on("error", () => {});
  }, CLUSTER_START_MS);
  afterAll(async () => {
    for (const master of masters) master.disconnect();
    await subject.close();
  });

  /** The index of the master that holds a claim's keys; fails unless they are all on one. */
  const ownerOf = async (claim: SeatClaim) => {
    const found = await Promise.all(
      masters.map((master) => master.keys(`${subject.keyPrefix}{${claim.sessionId}}:*`)),
    );
    const holders = found.flatMap((keys, index) => (keys.length > 0 ? [index] : []));
    expect(holders).toHaveLength(1);
    expect(found[holders[0] as number]).toHaveLength(claim.seatIds.length);
    return holders[0] as number;
  };

  it("keeps a claim's keys on one master, and spreads sessions over every master", async () => {
    const owners = new Set<number>();
    for (let index = 0; index < 30; index++) {
      const claim = claimOf(seats(3));
      expect((await attempt(subject, claim)).acquired).toBe(true);
      owners.add(await ownerOf(claim));
      await subject.lock.release(claim);
    }
    expect([...owners].sort()).toEqual([0, 1, 2]);
  });

  it("a master killed mid-run: its sessions' claims fail, and once the cluster is down every claim does", async () => {
    const held = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const claim = claimOf(seats(2));
        expect((await attempt(subject, claim)).acquired).toBe(true);
        return { claim, owner: await ownerOf(claim) };
      }),
    );
    const onVictim = held.filter((entry) => entry.owner === 0);
    expect(onVictim.length).toBeGreaterThan(0);
    await subject.cluster?.kill(0);

    // A claim for a dead master's slots is refused with an error (the failover's cue), not queued.
    for (const { claim } of onVictim) {
      await expect(subject.lock.acquire({ ...claim, owner: crypto.randomUUID() })).rejects.toThrow();
    }
    const survivors = masters.slice(1);
    await waitFor(
      async () =>
        (await Promise.all(survivors.map(async (master) => String(await master.cluster("INFO"))))).every(
          (info) => info.includes("cluster_state:fail"),
        ),
      20_000,
      "the surviving masters to declare the cluster down",
    );
    for (const { claim } of held) {
      await expect(subject.lock.acquire({ ...claim, owner: crypto.randomUUID() })).rejects.toThrow();
    }
    await expect((subject.redisLock as NonNullable<LockUnderTest["redisLock"]>).ping()).rejects.toThrow();
  });
});
