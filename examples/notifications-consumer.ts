/**
 * A consumer of `cinema.events` that sends notifications: the pattern every consumer of this
 * service should follow, since delivery is at-least-once and a handler can fail.
 *
 * - Its queue is durable and declared with a dead-letter exchange: a message it rejects is parked
 *   in `<queue>.parked` for a human to look at, never dropped and never redelivered in a loop.
 * - It deduplicates by `messageId` (the event id): a redelivered event is acknowledged unhandled.
 * - A failing handler is retried with backoff through delay queues (`<queue>.retry.<ms>`, whose
 *   messages expire back into the main queue), up to one retry per configured delay, then parked.
 * - Malformed messages and `PoisonMessageError`s are parked at once: retrying cannot fix them.
 *
 * Run it: `AMQP_URL=amqp://guest:guest@localhost:5672 npx tsx examples/notifications-consumer.ts`.
 */
import { pathToFileURL } from "node:url";
import { type ConsumeMessage, connect } from "amqplib";
import { parseEnv } from "../src/env.ts";
import { EVENTS_EXCHANGE } from "../src/events/amqp-publisher.ts";
import type { EventEnvelope } from "../src/events/types.ts";

/** Thrown by a handler for an event it can never process: the message is parked without retries. */
export class PoisonMessageError extends Error {
  override name = "PoisonMessageError";
}

/**
 * The ids of events already handled. In memory here; a real consumer records the id in its own
 * database, in the same transaction as the effect (a unique key turns a duplicate into a no-op).
 */
export type ProcessedMessages = {
  has(messageId: string): Promise<boolean>;
  add(messageId: string): Promise<void>;
};

export function inMemoryProcessedMessages(capacity = 100_000): ProcessedMessages {
  const ids = new Set<string>();
  return {
    has: async (messageId) => ids.has(messageId),
    add: async (messageId) => {
      ids.add(messageId);
      // Sets iterate in insertion order: drop the oldest beyond capacity.
      if (ids.size > capacity) ids.delete(ids.values().next().value as string);
    },
  };
}

export type NotificationsConsumerOptions = {
  url: string;
  handle: (event: EventEnvelope) => Promise<void>;
  exchange?: string;
  queue?: string;
  /** Routing keys (event types, `*`/`#` wildcards) the queue is bound to. */
  bindings?: string[];
  /** One retry per entry, after that many milliseconds; then the message is parked. */
  retryDelaysMs?: number[];
  processed?: ProcessedMessages;
  prefetch?: number;
  onError?: (
    error: unknown,
    message: { messageId: string | undefined; attempt: number; parked: boolean },
  ) => void;
};

const ATTEMPT_HEADER = "x-retry-attempt";

export async function startNotificationsConsumer(options: NotificationsConsumerOptions) {
  const exchange = options.exchange ?? EVENTS_EXCHANGE;
  const queue = options.queue ?? "notifications";
  const parked = `${queue}.parked`;
  const retry = `${queue}.retry`;
  const retryDelaysMs = options.retryDelaysMs ?? [1_000, 5_000, 30_000];
  const processed = options.processed ?? inMemoryProcessedMessages();

  const connection = await connect(options.url, { clientProperties: { connection_name: queue } });
  connection.on("error", () => {});
  // One confirm channel: retries are acknowledged only once the broker holds the retry copy.
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange(exchange, "topic", { durable: true });

  await channel.assertExchange(parked, "fanout", { durable: true });
  await channel.assertQueue(parked, { durable: true });
  await channel.bindQueue(parked, parked, "");

  await channel.assertExchange(retry, "direct", { durable: true });
  for (const delay of retryDelaysMs) {
    const delayQueue = `${retry}.${delay}ms`;
    await channel.assertQueue(delayQueue, {
      durable: true,
      messageTtl: delay,
      deadLetterExchange: "",
      deadLetterRoutingKey: queue,
    });
    await channel.bindQueue(delayQueue, retry, String(delay));
  }

  await channel.assertQueue(queue, { durable: true, deadLetterExchange: parked });
  for (const pattern of options.bindings ?? ["reservation.*", "payment.confirmed"]) {
    await channel.bindQueue(queue, exchange, pattern);
  }
  await channel.prefetch(options.prefetch ?? 10);

  const park = (message: ConsumeMessage) => channel.nack(message, false, false);

  const retryLater = async (message: ConsumeMessage, attempt: number, delay: number) => {
    const { properties } = message;
    await new Promise<void>((resolve, reject) => {
      channel.publish(
        retry,
        String(delay),
        message.content,
        {
          persistent: true,
          messageId: properties.messageId,
          type: properties.type,
          contentType: properties.contentType,
          timestamp: properties.timestamp,
          headers: { ...properties.headers, [ATTEMPT_HEADER]: attempt + 1 },
        },
        (error) => (error ? reject(error) : resolve()),
      );
    });
    channel.ack(message);
  };

  const onMessage = async (message: ConsumeMessage) => {
    const messageId: string | undefined = message.properties.messageId;
    const attempt = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 0);
    const event = parseEnvelope(message);
    if (!event || !messageId) {
      options.onError?.(new PoisonMessageError("not an event envelope"), {
        messageId,
        attempt,
        parked: true,
      });
      return park(message);
    }
    if (await processed.has(messageId)) return channel.ack(message);
    try {
      await options.handle(event);
      await processed.add(messageId);
      channel.ack(message);
    } catch (error) {
      const delay = retryDelaysMs[attempt];
      const parkNow = error instanceof PoisonMessageError || delay === undefined;
      options.onError?.(error, { messageId, attempt, parked: parkNow });
      if (parkNow) return park(message);
      await retryLater(message, attempt, delay).catch(() => channel.nack(message, false, true));
    }
  };

  // One message at a time: a duplicate delivered while its twin is still being handled must see
  // the twin recorded, and events of one reservation are handled in the order they arrived.
  let handling = Promise.resolve();
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (!message) return;
    handling = handling
      .then(() => onMessage(message))
      .catch((error) => {
        options.onError?.(error, { messageId: message.properties.messageId, attempt: 0, parked: false });
      });
  });

  return {
    queues: { main: queue, parked, retry: retryDelaysMs.map((delay) => `${retry}.${delay}ms`) },
    stop: async () => {
      await channel.cancel(consumerTag).catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

function parseEnvelope(message: ConsumeMessage): EventEnvelope | undefined {
  try {
    const body = JSON.parse(message.content.toString("utf8")) as Partial<EventEnvelope>;
    const valid =
      typeof body.id === "string" &&
      body.id === message.properties.messageId &&
      typeof body.type === "string" &&
      typeof body.occurredAt === "string" &&
      typeof body.data === "object" &&
      body.data !== null;
    return valid ? (body as EventEnvelope) : undefined;
  } catch {
    return undefined;
  }
}

/** The text a user would receive; a real consumer would send an e-mail or a push message. */
export function notificationText(event: EventEnvelope): string {
  switch (event.type) {
    case "reservation.created":
      return `Seats held until ${"expiresAt" in event.data ? event.data.expiresAt : "soon"}: pay to keep them.`;
    case "payment.confirmed":
      return "Payment received: your tickets are confirmed.";
    case "reservation.expired":
      return "Your hold ran out and the seats were released.";
    case "reservation.cancelled":
      return "Your reservation was cancelled.";
    default:
      return `Event ${event.type}`;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { amqpUrl } = parseEnv(process.env);
  const consumer = await startNotificationsConsumer({
    url: amqpUrl ?? "amqp://guest:guest@localhost:5672",
    handle: async (event) => {
      const userId = "userId" in event.data ? event.data.userId : "someone";
      console.log(`notify ${userId}: ${notificationText(event)}`);
    },
    onError: (error, message) => console.error(`message ${message.messageId} failed`, message, error),
  });
  console.log(`consuming ${consumer.queues.main}; parked messages go to ${consumer.queues.parked}`);
  process.once("SIGINT", () => void consumer.stop());
  process.once("SIGTERM", () => void consumer.stop());
}
