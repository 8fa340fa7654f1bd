import type { Database } from "../db/database.ts";
import type { HealthCheck, Logger } from "../ports.ts";
import { createAmqpPublisher } from "./amqp-publisher.ts";
import { listenForOutboxEvents } from "./outbox-listener-node.ts";
import { type Relay, type RelayOptions, startRelay } from "./relay.ts";
import { rabbitmqHealthCheck } from "./relay-health.ts";

export type NodeRelayOptions = {
  db: Database;
  amqpUrl: string;
  /** When set (PostgreSQL over TCP), a LISTEN connection wakes the relay; otherwise it only polls. */
  databaseUrl?: string;
  logger: Pick<Logger, "info" | "warn">;
  connectionName?: string;
  /** The exchange to publish to; `cinema.events` unless a test isolates itself. */
  exchange?: string;
  tuning?: Omit<RelayOptions, "db" | "publisher" | "onError" | "onPublished">;
};

export type NodeRelay = {
  relay: Relay;
  /** The `rabbitmq` entry of /health; the `outbox` entry is the app's own, on every runtime. */
  healthChecks: HealthCheck[];
  stop: () => Promise<void>;
};

/** The relay as Node runs it, in the API process or in the sidecar: amqplib publisher + pg LISTEN. */
export function startNodeRelay(options: NodeRelayOptions): NodeRelay {
  const { logger } = options;
  const publisher = createAmqpPublisher({
    url: options.amqpUrl,
    connectionName: options.connectionName ?? "outbox-relay",
    exchange: options.exchange,
  });
  let failing = false;
  const relay = startRelay({
    db: options.db,
    publisher,
    ...options.tuning,
    onError: (error, retry) => {
      // One warning per outage, then quieter: the backoff retries every few seconds.
      const fields = { err: error, failures: retry.failures, retryInMs: retry.delayMs };
      if (retry.failures === 1 || retry.failures % 20 === 0)
        logger.warn(fields, "outbox relay failed; backing off");
      failing = true;
    },
    onPublished: (count) => {
      if (failing) logger.info({ count }, "outbox relay publishing again");
      failing = false;
    },
  });
  const listener = options.databaseUrl
    ? listenForOutboxEvents({
        url: options.databaseUrl,
        onNotify: () => relay.wake(),
        onError: (error) =>
          logger.warn({ err: error }, "outbox LISTEN connection lost; polling until it is back"),
      })
    : undefined;
  return {
    relay,
    healthChecks: [rabbitmqHealthCheck(relay)],
    stop: async () => {
      await listener?.stop();
      await relay.stop();
      await publisher.close();
    },
  };
}
