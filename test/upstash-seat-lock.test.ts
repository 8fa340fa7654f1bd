import { Redis as UpstashRedis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUpstashSeatLock } from "../src/seat-lock/upstash.ts";
import { serviceUrl } from "./support/services.ts";
import { startUpstashStandIn, type UpstashStandIn } from "./support/upstash-stand-in.ts";

const redisUrl = serviceUrl("TEST_REDIS_URL");

function claim(overrides: { ttlMs?: number } = {}) {
  return {
    sessionId: crypto.randomUUID(),
    seatIds: [crypto.randomUUID(), crypto.randomUUID()].sort(),
    owner: crypto.randomUUID(),
    ttlMs: overrides.ttlMs ?? 10_000,
  };
}

describe.skipIf(!redisUrl)("Upstash REST stand-in and the Upstash seat lock", () => {
  let standIn: UpstashStandIn;
  const prefix = `test-upstash:${crypto.randomUUID().slice(0, 8)}:`;

  beforeAll(async () => {
    standIn = await startUpstashStandIn({ redisUrl: redisUrl as string });
  });
  afterAll(() => standIn.close());

  describe("the wire protocol, spoken to the real @upstash/redis client", () => {
    it("serves single commands, pipelines and transactions with base64 replies (client defaults)", async () => {
      const client = new UpstashRedis({ url: standIn.url, token: standIn.token, enableTelemetry: false });
      const key = `${prefix}greeting`;
      expect(await client.set(key, "héllo 🎟️", { px: 5_000 })).toBe("OK");
      expect(await client.get(key)).toBe("héllo 🎟️");
      expect(await client.ping()).toBe("PONG");

      const pipeline = client.pipeline();
      pipeline.incr(`${prefix}n`).incr(`${prefix}n`).get(`${prefix}n`).del(`${prefix}n`);
      expect(await pipeline.exec()).toEqual([1, 2, 2, 1]);

      const transaction = client.multi();
      transaction.set(`${prefix}t`, "x").get(`${prefix}t`).del(`${prefix}t`);
      expect(await transaction.exec()).toEqual(["OK", "x", 1]);

      expect(await client.eval("return {KEYS[1], ARGV[1], 7}", [`${prefix}k`], ["v"])).toEqual([
        `${prefix}k`,
        "v",
        7,
      ]);
      await client.del(key);
    });

    it("answers errors as {error}, refuses a wrong token, and encodes only when asked", async () => {
      const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
        fetch(`${standIn.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${standIn.token}`, ...headers },
          body: JSON.stringify(body),
        });
      const key = `${prefix}plain`;
      expect(await (await post("/", ["SET", key, "seat", "PX", 5000])).json()).toEqual({ result: "OK" });
      expect(await (await post("/", ["GET", key])).json()).toEqual({ result: "seat" });
      expect(await (await post("/", ["GET", key], { "upstash-encoding": "base64" })).json()).toEqual({
        result: Buffer.from("seat").toString("base64"),
      });

      const wrongType = await post("/", ["HGET", key, "field"]);
      expect(wrongType.status).toBe(400);
      expect((await wrongType.json()).error).toMatch(/WRONGTYPE/);

      const batch = await post("/pipeline", [
        ["GET", key],
        ["HGET", key, "field"],
      ]);
      expect(batch.status).toBe(200);
      const replies = await batch.json();
      expect(replies[0]).toEqual({ result: "seat" });
      expect(replies[1].error).toMatch(/WRONGTYPE/);

      const refused = await fetch(standIn.url, {
        method: "POST",
        headers: { authorization: "Bearer wrong" },
        body: JSON.stringify(["GET", key]),
      });
      expect(refused.status).toBe(401);
      await post("/", ["DEL", key]);
    });
  });

  describe("the seat lock's client configuration", () => {
    it("sends a lock script exactly once when its reply is lost, and reports the failure", async () => {
      const lock = createUpstashSeatLock({
        url: standIn.url,
        token: standIn.token,
        timeoutMs: 2_000,
        keyPrefix: prefix,
      });
      const held = claim();
      expect((await lock.acquire(held)).acquired).toBe(true); // the script is now known by SHA
      const lost = claim();
      const before = standIn.received.length;
      standIn.dropReplies(1);
      await expect(lock.acquire(lost)).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 300)); // time for any retry to arrive
      const sent = standIn.received.slice(before).filter(([command]) => /^eval/i.test(command ?? ""));
      expect(sent).toHaveLength(1);
      // The script did run: the same owner asking again finds its own lock, not a conflict.
      expect((await lock.acquire(lost)).acquired).toBe(true);
      await lock.release(held);
      await lock.release(lost);
    });

    it("shows why: with the client's default retries a lost SET NX reply comes back as a conflict", async () => {
      const client = new UpstashRedis({ url: standIn.url, token: standIn.token, enableTelemetry: false });
      const key = `${prefix}naive`;
      standIn.dropReplies(1);
      const reply = await client.set(key, "me", { nx: true, px: 5_000 });
      expect(reply).toBeNull(); // the retry found our own key: looks like someone else's lock
      expect(await client.get(key)).toBe("me");
      await client.del(key);

      // `retry: false` is not enough in @upstash/redis 1.39: it still makes a second attempt.
      const noRetry = new UpstashRedis({
        url: standIn.url,
        token: standIn.token,
        enableTelemetry: false,
        retry: false,
      });
      standIn.dropReplies(1);
      expect(await noRetry.set(key, "me", { nx: true, px: 5_000 })).toBeNull();
      await client.del(key);
    });

    it("gives up after its timeout when the reply is late", async () => {
      const lock = createUpstashSeatLock({
        url: standIn.url,
        token: standIn.token,
        timeoutMs: 150,
        keyPrefix: prefix,
      });
      standIn.setLatency(1_000);
      const started = performance.now();
      try {
        await expect(lock.acquire(claim())).rejects.toThrow();
      } finally {
        standIn.setLatency(0);
      }
      expect(performance.now() - started).toBeLessThan(900);
    });
  });
});
