import { withDeadline } from "../deadline.ts";
import type { Logger } from "../ports.ts";

/**
 * Ordered, bounded shutdown for every long-running entry (Node, the sidecar, Deno, Bun). Web APIs
 * only: the signals and the exit belong to each runtime.
 */

export type ShutdownStep = {
  name: string;
  run: () => Promise<unknown>;
  /** Called when the step runs out of time, to cut what it waits for (open connections). */
  onExpired?: () => void;
  /** At most this share of the time left, so one stuck step leaves time for the others. */
  share?: number;
};

/**
 * Runs the steps in order within one deadline. A step that fails or outlives its time is logged and
 * left behind; the next one starts at once. Answers the exit code: 0 when every step finished,
 * 1 when one had to be abandoned.
 */
export async function runShutdown(
  steps: ShutdownStep[],
  options: { deadlineMs: number; logger: Logger },
): Promise<number> {
  const endsAt = Date.now() + options.deadlineMs;
  let code = 0;
  for (const step of steps) {
    const left = Math.max(0, endsAt - Date.now());
    const ms = Math.floor(left * (step.share ?? 1));
    try {
      await withDeadline(
        Promise.resolve().then(step.run),
        ms,
        `${step.name} did not stop`,
        step.onExpired ? { onExpired: step.onExpired } : {},
      );
    } catch (error) {
      code = 1;
      options.logger.warn({ step: step.name, err: error }, "shutdown step abandoned; going on without it");
    }
  }
  return code;
}
