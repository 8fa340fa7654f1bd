/**
 * Bounded waits: every await on the network goes through one of these, so a peer that stops
 * answering costs a known time, never a hung request, relay or shutdown. Web APIs only (timers),
 * so every layer and every runtime may use it.
 */

/** The rejection of a wait whose time ran out. The work itself goes on unless `onExpired` stops it. */
export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

type Expiry = {
  /** Called once when the time is up, before the wait rejects: destroy a socket, abort a request. */
  onExpired?: () => void;
};

/**
 * `work`'s outcome, or a `DeadlineExceeded` ("`what` within `ms` ms") once `ms` passed first.
 * A late rejection of `work` is not reported as unhandled: the race has already taken it.
 */
export function withDeadline<T>(
  work: PromiseLike<T>,
  ms: number,
  what: string,
  options: Expiry = {},
): Promise<T> {
  const promise = Promise.resolve(work);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        options.onExpired?.();
      } finally {
        reject(new DeadlineExceeded(`${what} within ${ms} ms`));
      }
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Like `Promise.allSettled`, but what has not settled within `ms` counts as rejected, all on one timer. */
export async function settleWithin<T>(
  promises: readonly PromiseLike<T>[],
  ms: number,
  what: string,
): Promise<PromiseSettledResult<T>[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`${what} within ${ms} ms`)), ms);
  });
  // A rejection nobody awaits yet must not surface as unhandled.
  expired.catch(() => {});
  try {
    return await Promise.allSettled(promises.map((promise) => Promise.race([promise, expired])));
  } finally {
    clearTimeout(timer);
  }
}
