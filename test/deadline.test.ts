import { describe, expect, it } from "vitest";
import { DeadlineExceeded, settleWithin, withDeadline } from "../src/deadline.ts";

const never = new Promise<never>(() => {});

describe("withDeadline", () => {
  it("answers the work's outcome when it settles in time", async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000, "no answer")).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error("refused")), 1_000, "no answer")).rejects.toThrow(
      "refused",
    );
  });

  it("rejects with DeadlineExceeded naming the wait, and calls onExpired once, when the work hangs", async () => {
    let expired = 0;
    const outcome = withDeadline(never, 20, "no answer", { onExpired: () => expired++ });
    await expect(outcome).rejects.toBeInstanceOf(DeadlineExceeded);
    await expect(outcome).rejects.toThrow("no answer within 20 ms");
    expect(expired).toBe(1);
  });
});

describe("settleWithin", () => {
  it("counts what has not settled in time as rejected, keeping what did", async () => {
    const results = await settleWithin(
      [Promise.resolve(1), never, Promise.reject(new Error("nack"))],
      20,
      "no confirm",
    );
    expect(results[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/no confirm within 20 ms/);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/nack/);
  });
});
