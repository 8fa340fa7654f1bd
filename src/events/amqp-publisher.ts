import { type ChannelModel, type ConfirmChannel, connect } from "amqplib";
import type { EventPublisher, OutgoingEvent } from "./publisher.ts";

/** The durable topic exchange every event goes to; the routing key is the event type. */
export const EVENTS_EXCHANGE = "cinema.events";

export type AmqpPublisherOptions = {
  url: string;
  /** Tests use their own exchange so parallel suites never see each other's events. */
  exchange?: string;
  /** Gives up a connection attempt to an unresponsive host after this long. */
  connectTimeoutMs?: number;
  /** Shown in the broker's connection list. */
  connectionName?: string;
};

type Link = { connection: ChannelModel; channel: ConfirmChannel };

/**
 * Publishes outbox events with amqplib on a confirm channel: persistent messages, `messageId` =
 * event id, routing key = event type, JSON body `{id, type, occurredAt, data}`. The connection is
 * opened by `ready()` and dropped on any error; the relay's backoff decides when to try again.
 */
export function createAmqpPublisher(options: AmqpPublisherOptions): EventPublisher {
  const exchange = options.exchange ?? EVENTS_EXCHANGE;
  let link: Link | undefined;
  let opening: Promise<Link> | undefined;

  const open = async (): Promise<Link> => {
    const connection = await connect(options.url, {
      timeout: options.connectTimeoutMs ?? 5_000,
      clientProperties: { connection_name: options.connectionName ?? "outbox-relay" },
    });
    const forget = () => {
      if (link?.connection === connection) link = undefined;
    };
    // Without listeners these would be thrown; the lost link shows as a failed publish or ready().
    connection.on("error", forget);
    connection.on("close", forget);
    try {
      const channel = await connection.createConfirmChannel();
      // A channel closed by the broker leaves its connection open: close that too.
      const lost = () => {
        forget();
        connection.close().catch(() => {});
      };
      channel.on("error", lost);
      channel.on("close", lost);
      await channel.assertExchange(exchange, "topic", { durable: true });
      return { connection, channel };
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  };

  const drop = async () => {
    const current = link;
    link = undefined;
    await current?.connection.close().catch(() => {});
  };

  return {
    async ready() {
      if (link) return;
      opening ??= open().finally(() => {
        opening = undefined;
      });
      link = await opening;
    },

    publish(event: OutgoingEvent) {
      const current = link;
      if (!current) return Promise.reject(new Error("not connected to the broker"));
      const { envelope } = event;
      return new Promise<void>((resolve, reject) => {
        current.channel.publish(
          exchange,
          envelope.type,
          Buffer.from(JSON.stringify(envelope)),
          {
            persistent: true,
            messageId: envelope.id,
            type: envelope.type,
            contentType: "application/json",
            contentEncoding: "utf-8",
            timestamp: Math.floor(Date.parse(envelope.occurredAt) / 1000),
            appId: "cinema-seat-reservation",
            headers: { "aggregate-id": event.aggregateId, "outbox-seq": event.seq },
          },
          (error) =>
            error
              ? reject(error instanceof Error ? error : new Error(`broker nacked ${envelope.id}`))
              : resolve(),
        );
      });
    },

    isConnected: () => link !== undefined,
    reset: drop,
    close: drop,
  };
}
