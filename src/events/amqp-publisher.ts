import { type ChannelModel, type ConfirmChannel, connect } from "amqplib";
import { withDeadline } from "../deadline.ts";
import type { EventPublisher, OutgoingEvent } from "./publisher.ts";

/** The durable topic exchange every event goes to; the routing key is the event type. */
export const EVENTS_EXCHANGE = "cinema.events";

export type AmqpPublisherOptions = {
  url: string;
  /** Tests use their own exchange so parallel suites never see each other's events. */
  exchange?: string;
  /** Gives up opening a connection (TCP, AMQP handshake, channel, exchange) after this long. */
  connectTimeoutMs?: number;
  /** Gives up a graceful close (the broker's Close-Ok) after this long and destroys the socket. */
  closeTimeoutMs?: number;
  /**
   * Heartbeat period asked of the broker unless the URL sets `heartbeat`: a connection whose path
   * went silent (stalled or dropping packets) is declared dead after about two periods.
   */
  heartbeatSeconds?: number;
  /** Shown in the broker's connection list. */
  connectionName?: string;
};

type Link = { connection: ChannelModel; channel: ConfirmChannel };

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 2_000;
const HEARTBEAT_SECONDS = 5;

/**
 * Ends a connection at once, without the Close/Close-Ok exchange: amqplib's `close()` settles only
 * when Close-Ok arrives, which never happens once the path is dead.
 */
function destroy(connection: ChannelModel): void {
  (connection.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy();
}

/** The broker URL with our heartbeat unless the operator chose one. */
function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(seconds));
  return parsed.toString();
}

/**
 * Publishes outbox events with amqplib on a confirm channel: persistent messages, `messageId` =
 * event id, routing key = event type, JSON body `{id, type, occurredAt, data}`. The connection is
 * opened by `ready()` and dropped on any error; the relay's backoff decides when to try again.
 * Every wait on the broker is bounded: opening, closing, and (in the relay) each confirm.
 */
export function createAmqpPublisher(options: AmqpPublisherOptions): EventPublisher {
  const exchange = options.exchange ?? EVENTS_EXCHANGE;
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
  const url = withHeartbeat(options.url, options.heartbeatSeconds ?? HEARTBEAT_SECONDS);
  let link: Link | undefined;
  let opening: Promise<Link> | undefined;

  /** A graceful close when the broker answers in time; the socket destroyed when it does not. */
  const closeWithin = async (connection: ChannelModel) => {
    await withDeadline(connection.close(), closeTimeoutMs, "no Close-Ok from the broker", {
      onExpired: () => destroy(connection),
    }).catch(() => destroy(connection));
  };

  // amqplib bounds only the TCP connect; a broker that accepts and then says nothing would hold
  // the handshake, the channel or the exchange declaration for ever.
  const open = (): Promise<Link> => {
    let abandoned = false;
    let opened: ChannelModel | undefined;
    const attempt = async (): Promise<Link> => {
      const connection = await connect(url, {
        timeout: connectTimeoutMs,
        clientProperties: { connection_name: options.connectionName ?? "outbox-relay" },
      });
      opened = connection;
      if (abandoned) {
        destroy(connection);
        throw new Error("broker connection opened after its deadline");
      }
      return setUp(connection);
    };
    return withDeadline(attempt(), connectTimeoutMs, "no broker connection", {
      onExpired: () => {
        abandoned = true;
        if (opened) destroy(opened);
      },
    });
  };

  const setUp = async (connection: ChannelModel): Promise<Link> => {
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
        void closeWithin(connection);
      };
      channel.on("error", lost);
      channel.on("close", lost);
      await channel.assertExchange(exchange, "topic", { durable: true });
      return { connection, channel };
    } catch (error) {
      await closeWithin(connection);
      throw error;
    }
  };

  const drop = async () => {
    const current = link;
    link = undefined;
    if (current) await closeWithin(current.connection);
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
