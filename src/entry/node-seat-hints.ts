import { createHintFanout, type SeatChangeHints } from "../booking/seat-watch.ts";
import { OUTBOX_CHANNEL } from "../events/outbox.ts";
import { listenForOutboxEvents } from "../events/outbox-listener-node.ts";
import type { Logger } from "../ports.ts";

/**
 * Live seat maps on Node hear of changes from PostgreSQL: every commit that changes a seat writes
 * outbox events and is followed by `NOTIFY outbox_events` (events/outbox.ts), whichever instance
 * made it, so one LISTEN connection per instance hears them all. PGlite delivers the same
 * notifications to its own listeners. Either way a lost notification only waits for the watch's
 * safety poll.
 */
export function postgresSeatHints(url: string, logger: Pick<Logger, "warn">) {
  const fanout = createHintFanout();
  const listener = listenForOutboxEvents({
    url,
    onNotify: fanout.emit,
    onError: (error) => logger.warn({ err: error }, "seat-change LISTEN connection lost; reconnecting"),
  });
  return { hints: fanout, closeStreams: fanout.close, stop: () => listener.stop() };
}

type Listening = { listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> };

/** PostgreSQL's LISTEN connection when `databaseUrl` is set, else the embedded database's listener. */
export async function nodeSeatHints(
  databaseUrl: string | undefined,
  database: object,
  logger: Pick<Logger, "warn">,
): Promise<{ hints: SeatChangeHints; closeStreams: () => void; stop: () => Promise<void> }> {
  if (databaseUrl) return postgresSeatHints(databaseUrl, logger);
  const embedded = database as Partial<Listening>;
  if (typeof embedded.listen !== "function") throw new Error("the embedded database cannot listen");
  const fanout = createHintFanout();
  const unlisten = await embedded.listen(OUTBOX_CHANNEL, fanout.emit);
  return { hints: fanout, closeStreams: fanout.close, stop: unlisten };
}
