import { withDeadline } from "../deadline.ts";
import type { RedisSeatLock } from "./redis-seat-lock.ts";
import type { SeatLock, SeatRelease } from "./seat-lock.ts";

/** The counters the failover reports to; the booking Telemetry port satisfies it. */
export type FailoverTelemetry = {
  lockAcquisition(backend: string, result: "acquired" | "conflict" | "error"): void;
  lockFallback(active: boolean, reason?: string): void;
};

export type FailoverOptions = {
  primary: RedisSeatLock;
  /** Carries the claims while the primary is out: advisory locks inside the claim transaction. */
  fallback: SeatLock;
  /** A primary call without an answer this long counts as a failure. */
  timeoutMs: number;
  /** How long after a failure the primary is left alone before one request tries it again. */
  cooldownMs: number;
  telemetry?: FailoverTelemetry;
  now?: () => number;
};

export type FailoverSeatLock = SeatLock & {
  /** For /health: "ok", or degraded with the reason while the fallback carries the claims. */
  check(): Promise<"ok" | { degraded: string }>;
};

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Redis first; when it errors or does not answer within `timeoutMs`, the same request goes on
 * with the fallback at once, and so do all requests for `cooldownMs`. Then a single request (or a
 * health check) tries Redis again; its success ends the fallback. Nothing here throws at a buyer.
 */
export function createFailoverSeatLock(options: FailoverOptions): FailoverSeatLock {
  const { primary, fallback, timeoutMs, cooldownMs } = options;
  const now = options.now ?? Date.now;
  let outage: { reason: string; retryAt: number } | undefined;
  let probing = false;

  /** "primary", "probe" (the one call allowed to test a primary that failed), or "fallback". */
  function route(): "primary" | "probe" | "fallback" {
    if (!outage) return "primary";
    if (probing || now() < outage.retryAt) return "fallback";
    probing = true;
    return "probe";
  }

  function failed(error: unknown): void {
    options.telemetry?.lockAcquisition(primary.backend, "error");
    const started = !outage;
    const reason = `${primary.backend} seat locks failed (${describe(error)}); PostgreSQL advisory locks carry the claims`;
    outage = { reason, retryAt: now() + cooldownMs };
    if (started) options.telemetry?.lockFallback(true, reason);
  }

  function recovered(): void {
    if (!outage) return;
    outage = undefined;
    options.telemetry?.lockFallback(false);
  }

  return {
    keyedBySession: true,
    async acquire(claim) {
      const path = route();
      if (path === "fallback") return fallback.acquire(claim);
      try {
        const attempt = await withDeadline(primary.acquire(claim), timeoutMs, "no answer");
        if (path === "probe") recovered();
        return attempt;
      } catch (error) {
        // A call that timed out may still set its keys; they carry this hold's id and end with its TTL.
        failed(error);
        return fallback.acquire(claim);
      } finally {
        if (path === "probe") probing = false;
      }
    },
    async release(seats: SeatRelease) {
      // During an outage locks are left to their TTL: a stale one costs a needless 409, no more.
      if (outage) return;
      try {
        await withDeadline(primary.release(seats), timeoutMs, "no answer");
      } catch (error) {
        failed(error);
      }
    },
    async extend(seats: SeatRelease, ttlMs: number) {
      // During an outage the lock keeps its old TTL: when it ends early, the constraint still holds the seats.
      if (outage || !primary.extend) return;
      try {
        await withDeadline(primary.extend(seats, ttlMs), timeoutMs, "no answer");
      } catch (error) {
        failed(error);
      }
    },
    async check() {
      const path = route();
      if (path === "fallback") return { degraded: outage?.reason ?? "fallback" };
      try {
        await withDeadline(primary.ping(), timeoutMs, "no answer");
        if (path === "probe") recovered();
        return "ok";
      } catch (error) {
        failed(error);
        return { degraded: outage?.reason ?? describe(error) };
      } finally {
        if (path === "probe") probing = false;
      }
    },
  };
}
