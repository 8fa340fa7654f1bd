import type { Executor } from "../db/database.ts";
import { readSeatMap, type SeatMapState } from "./sessions.ts";
import type { SeatCounts, SeatStatus } from "./views.ts";

/**
 * Hints that a seat may have changed somewhere: on Node a PostgreSQL notification, sent after
 * every commit that wrote events, whichever instance made it; on Deno and Bun a periodic tick.
 * A hint says nothing about what changed: the watch reads the map again and works out the
 * difference itself, so a hint lost, repeated or early never makes a map wrong.
 */
export type SeatChangeHints = {
  subscribe(onHint: () => void): () => void;
  /** Called when the instance shuts down: open streams end, so their clients reconnect elsewhere. */
  onClose?(listener: () => void): () => void;
};

export type SeatChange = {
  version: string;
  counts: SeatCounts;
  /** The seats whose status changed since the previous version. */
  seats: { id: string; status: SeatStatus }[];
};

export type SeatWatcher = (change: SeatChange) => void;

export type SeatWatch = {
  /**
   * Starts watching a session: answers its map as it is now (undefined for an unknown session),
   * then calls `onChange` with every change after it, until `stop`.
   */
  watch(
    sessionId: string,
    onChange: SeatWatcher,
  ): Promise<{ map: SeatMapState; stop: () => void } | undefined>;
};

export type SeatWatchOptions = {
  db: Executor;
  hints: SeatChangeHints;
  /** Re-read a watched map this often even without a hint (a notification lost with a connection). */
  safetyPollMs?: number;
};

/** The shortest time between two reads of one watched session's map on one instance. */
const MIN_READ_GAP_MS = 100;

type Watched = {
  watchers: Set<SeatWatcher>;
  last: SeatMapState;
  reading: boolean;
  again: boolean;
  expiryTimer?: ReturnType<typeof setTimeout>;
  pollTimer: ReturnType<typeof setInterval>;
};

/**
 * One reader per session per instance, however many streams watch it: on each hint every watched
 * session is read again (one read in flight per session, one more after it when hints arrived
 * meanwhile, at most one every 100 ms), and the seats whose status changed go to every watcher. A hold running out changes
 * the map with no write, so the watch also reads again at the instant the earliest live hold ends.
 */
export function createSeatWatch(options: SeatWatchOptions): SeatWatch {
  const { db, hints } = options;
  const safetyPollMs = options.safetyPollMs ?? 5_000;
  const sessions = new Map<string, Watched>();
  let unsubscribe: (() => void) | undefined;

  function onHint(): void {
    for (const sessionId of sessions.keys()) refresh(sessionId);
  }

  function refresh(sessionId: string): void {
    const watched = sessions.get(sessionId);
    if (!watched) return;
    if (watched.reading) {
      watched.again = true;
      return;
    }
    watched.reading = true;
    void (async () => {
      try {
        let readAt = 0;
        do {
          // Under a crowd, hints arrive faster than reads: one read per session every
          // MIN_READ_GAP_MS at most, each covering every hint that came before it.
          const wait = readAt + MIN_READ_GAP_MS - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          readAt = Date.now();
          watched.again = false;
          const map = await readSeatMap(db, sessionId).catch(() => undefined);
          if (!map || sessions.get(sessionId) !== watched) continue;
          const previous = watched.last;
          watched.last = map;
          scheduleExpiry(sessionId, watched);
          if (map.version === previous.version) continue;
          const change: SeatChange = {
            version: map.version,
            counts: map.counts,
            seats: changedSeats(previous, map),
          };
          for (const watcher of watched.watchers) watcher(change);
        } while (watched.again);
      } finally {
        watched.reading = false;
      }
    })();
  }

  function scheduleExpiry(sessionId: string, watched: Watched): void {
    clearTimeout(watched.expiryTimer);
    const at = watched.last.nextExpiryAt;
    if (at === undefined) return;
    // A little after the database's instant; never a tight loop if this clock runs ahead of it.
    const delay = Math.max(at - Date.now() + 20, 100);
    watched.expiryTimer = setTimeout(() => refresh(sessionId), delay);
  }

  function stopWatching(sessionId: string, watched: Watched): void {
    clearTimeout(watched.expiryTimer);
    clearInterval(watched.pollTimer);
    sessions.delete(sessionId);
    if (sessions.size === 0) {
      unsubscribe?.();
      unsubscribe = undefined;
    }
  }

  return {
    async watch(sessionId, onChange) {
      let watched = sessions.get(sessionId);
      if (!watched) {
        const map = await readSeatMap(db, sessionId);
        if (!map) return undefined;
        // Another stream may have started watching while this one read.
        watched = sessions.get(sessionId);
        if (!watched) {
          watched = {
            watchers: new Set(),
            last: map,
            reading: false,
            again: false,
            pollTimer: setInterval(() => refresh(sessionId), safetyPollMs),
          };
          sessions.set(sessionId, watched);
          scheduleExpiry(sessionId, watched);
          unsubscribe ??= hints.subscribe(onHint);
        }
      }
      const current = watched;
      current.watchers.add(onChange);
      return {
        map: current.last,
        stop: () => {
          current.watchers.delete(onChange);
          if (current.watchers.size === 0 && sessions.get(sessionId) === current)
            stopWatching(sessionId, current);
        },
      };
    },
  };
}

function changedSeats(before: SeatMapState, after: SeatMapState): SeatChange["seats"] {
  const previous = new Map(before.seats.map((seat) => [seat.id, seat.status]));
  return after.seats
    .filter((seat) => previous.get(seat.id) !== seat.status)
    .map((seat) => ({ id: seat.id, status: seat.status }));
}

/** Hints on a timer, where no notification reaches the instance (Deno, Bun). */
export function tickingHints(intervalMs: number): SeatChangeHints & { close: () => void } {
  const closing = new Set<() => void>();
  return {
    subscribe(onHint) {
      const timer = setInterval(onHint, intervalMs);
      return () => clearInterval(timer);
    },
    onClose(listener) {
      closing.add(listener);
      return () => closing.delete(listener);
    },
    close: () => {
      for (const listener of closing) listener();
    },
  };
}

/** Hints fanned out to many subscribers from one source (one LISTEN connection, one PGlite listener). */
export function createHintFanout(): SeatChangeHints & { emit: () => void; close: () => void } {
  const listeners = new Set<() => void>();
  const closing = new Set<() => void>();
  return {
    emit: () => {
      for (const listener of listeners) listener();
    },
    close: () => {
      for (const listener of closing) listener();
    },
    subscribe(onHint) {
      listeners.add(onHint);
      return () => listeners.delete(onHint);
    },
    onClose(listener) {
      closing.add(listener);
      return () => closing.delete(listener);
    },
  };
}
