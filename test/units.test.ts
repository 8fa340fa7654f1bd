import { describe, expect, it } from "vitest";
import { requestFingerprint } from "../src/booking/idempotency.ts";
import { fromCents, hasAtMostTwoDecimals, toCents } from "../src/booking/money.ts";
import { createRefusalMemo } from "../src/booking/refusals.ts";
import { rowLabel } from "../src/booking/seat-grid.ts";
import { ConfigError, parseEnv } from "../src/env.ts";

describe("row labels", () => {
  it.each([
    [0, "A"],
    [25, "Z"],
    [26, "AA"],
    [27, "AB"],
    [51, "AZ"],
    [52, "BA"],
    [701, "ZZ"],
    [702, "AAA"],
    [9_999, "NTP"],
  ])("row %i is %s", (index, label) => expect(rowLabel(index)).toBe(label));
});

describe("money", () => {
  it("keeps cents exact", () => {
    expect(toCents(19.99)).toBe(1999);
    expect(toCents(0.1 + 0.2)).toBe(30);
    expect(fromCents(1999)).toBe(19.99);
  });
  it.each([
    [12.5, true],
    [9.99, true],
    [0.07, true],
    [1_000_000, true],
    [10.005, false],
    [0.001, false],
  ])("%d has at most two decimals: %s", (amount, expected) =>
    expect(hasAtMostTwoDecimals(amount)).toBe(expected),
  );
});

describe("parseEnv", () => {
  it("has defaults that serve one machine", () => {
    expect(parseEnv({})).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      dataDir: "./.data",
      reservationTtlSeconds: 30,
      expirySweepIntervalMs: 5000,
      logLevel: "info",
    });
  });
  it("treats empty values as unset", () => {
    expect(parseEnv({ DATABASE_URL: "", PORT: "" })).toMatchObject({ databaseUrl: undefined, port: 3000 });
  });
  it.each([
    [{ PORT: "http" }, "PORT"],
    [{ RESERVATION_TTL_SECONDS: "0" }, "RESERVATION_TTL_SECONDS"],
    [{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ UPSTASH_REDIS_REST_URL: "https://example.upstash.io" }, "UPSTASH_REDIS_REST_TOKEN"],
  ])("names the variable at fault in %j", (record, variable) => {
    expect(() => parseEnv(record)).toThrow(ConfigError);
    expect(() => parseEnv(record)).toThrow(variable);
  });
});

describe("request fingerprints", () => {
  it("ignore key order and differ on content", async () => {
    const a = await requestFingerprint({ userId: "u", seatIds: ["x", "y"] });
    expect(await requestFingerprint({ seatIds: ["x", "y"], userId: "u" })).toBe(a);
    expect(await requestFingerprint({ seatIds: ["y", "x"], userId: "u" })).not.toBe(a);
  });
});

describe("refusal memo", () => {
  function memoAt(windowMs: number, maxSeats?: number) {
    let clock = 1_000;
    const memo = createRefusalMemo({ windowMs, maxSeats, now: () => clock });
    return { memo, advance: (ms: number) => (clock += ms) };
  }

  it("refuses remembered seats for the window, then asks again", () => {
    const { memo, advance } = memoAt(500);
    memo.remember(["a"]);
    expect(memo.refused(["a", "b"])).toEqual(["a"]);
    advance(499);
    expect(memo.refused(["b", "a"])).toEqual(["a"]);
    advance(1);
    expect(memo.refused(["a", "b"])).toEqual([]);
  });

  it("forgets seats this instance freed at once", () => {
    const { memo } = memoAt(500);
    memo.remember(["a", "b"]);
    memo.forget(["a"]);
    expect(memo.refused(["a", "b"])).toEqual(["b"]);
  });

  it("remembers nothing with a window of 0", () => {
    const { memo } = memoAt(0);
    memo.remember(["a"]);
    expect(memo.refused(["a"])).toEqual([]);
  });

  it("knows the lock attempts in flight until they settle, and none with a window of 0", async () => {
    const { memo } = memoAt(500);
    expect(memo.inFlight(["a"])).toBeUndefined();
    const settleAb = memo.attempting(["a", "b"]);
    const settleC = memo.attempting(["c"]);
    const waiting = memo.inFlight(["b", "c", "d"]);
    expect(waiting).toBeDefined();
    expect(memo.inFlight(["d"])).toBeUndefined();
    let settled = false;
    void waiting?.then(() => {
      settled = true;
    });
    settleAb();
    await Promise.resolve();
    expect(settled).toBe(false);
    settleC();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(settled).toBe(true);
    expect(memo.inFlight(["a", "b", "c"])).toBeUndefined();

    const off = memoAt(0).memo;
    off.attempting(["a"]);
    expect(off.inFlight(["a"])).toBeUndefined();
  });

  it("stays within its size: ended entries go first, then all of them", () => {
    const { memo, advance } = memoAt(500, 3);
    memo.remember(["a", "b"]);
    advance(600);
    memo.remember(["c", "d"]);
    expect(memo.refused(["a", "b", "c", "d"])).toEqual(["c", "d"]);
    memo.remember(["e", "f"]);
    expect(memo.refused(["c", "d", "e", "f"])).toEqual(["e", "f"]);
  });

  it("sweeps ended entries long before it is full, keeping the live ones", () => {
    const { memo, advance } = memoAt(500);
    const seats = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => `seat-${from + i}`);
    for (let i = 0; i < 3_000; i += 2) memo.remember(seats(i, 2));
    advance(600);
    memo.remember(seats(10_000, 2));
    for (let i = 0; i < 3_000; i += 2) {
      memo.remember(seats(20_000 + i, 2));
      advance(i % 200 === 0 ? 1 : 0);
    }
    // 6,002 seats were remembered; only those of the last window are refused, and the memo holds
    // at most twice them, not every seat it ever saw.
    expect(memo.size()).toBeLessThanOrEqual(2 * 3_002);
    expect(memo.size()).toBeLessThan(6_002);
    expect(memo.refused(seats(0, 4))).toEqual([]);
    expect(memo.refused(seats(20_000, 2))).toEqual(seats(20_000, 2));
    expect(memo.refused(seats(10_000, 2))).toEqual(seats(10_000, 2));
  });
});
