import { expireAllOverdueHolds, pruneIdempotencyKeys } from "../booking/expire.ts";
import { noTelemetry, type Telemetry } from "../booking/telemetry.ts";
import type { Database } from "../db/database.ts";
import type { SeatLock } from "../seat-lock/seat-lock.ts";

export type SweeperOptions = {
  db: Database;
  intervalMs: number;
  onError: (error: unknown) => void;
  onSwept?: (expired: number) => void;
  /** Counts each completed run and the holds it expired; the no-op when absent. */
  telemetry?: Telemetry;
  /** Releases the seat locks of the holds it expires. */
  seatLock?: SeatLock;
};

const PRUNE_EVERY_MS = 60 * 60 * 1000;

/**
 * The local expiry fallback: every `intervalMs` it expires overdue holds in batches. Runs never
 * overlap (the next one is scheduled when the last ended); several instances share the work
 * through SKIP LOCKED. Correctness never waits for it: overdue holds already read as free.
 */
export function startSweeper(options: SweeperOptions): { stop: () => Promise<void> } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let lastPrune = 0;

  const sweep = async () => {
    try {
      const expired = await expireAllOverdueHolds(options.db, undefined, options.seatLock);
      const telemetry = options.telemetry ?? noTelemetry;
      telemetry.sweeperRun(expired);
      if (expired > 0) telemetry.holdOutcome("expired", expired);
      options.onSwept?.(expired);
      if (Date.now() - lastPrune >= PRUNE_EVERY_MS) {
        await pruneIdempotencyKeys(options.db);
        lastPrune = Date.now();
      }
    } catch (error) {
      options.onError(error);
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().then(schedule);
    }, options.intervalMs);
  };
  schedule();

  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
