import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SeatClaim } from "../src/seat-lock/seat-lock.ts";
import {
  attempt,
  availableLocks,
  describeEachLock,
  inspectRedis,
  type LockUnderTest,
  openLock,
} from "./support/seat-locks.ts";

/** Sorted seat ids, as holdSeats passes them. */
function seats(count: number): string[] {
  return Array.from({ length: count }, () => crypto.randomUUID()).sort();
}

function claimOf(seatIds: string[], overrides: Partial<SeatClaim> = {}): SeatClaim {
  return { sessionId: crypto.randomUUID(), seatIds, owner: crypto.randomUUID(), ttlMs: 10_000, ...overrides };
}

describeEachLock(availableLocks(), "seat lock contract: %s", (name) => {
  let subject: LockUnderTest;

  beforeAll(async () => {
    subject = await openLock(name);
  });
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
  availableLocks().filter((name) => name !== "advisory"),
  "redis seat lock specifics: %s",
  (name) => {
    let subject: LockUnderTest;
    let redis: Redis;

    beforeAll(async () => {
      subject = await openLock(name);
      redis = inspectRedis();
    });
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
      await redis.script("FLUSH");
      const claim = claimOf(seats(1));
      expect((await attempt(subject, claim)).acquired).toBe(true);
      await subject.lock.release(claim);
      expect((await attempt(subject, { ...claim, owner: crypto.randomUUID() })).acquired).toBe(true);
    });
  },
);
