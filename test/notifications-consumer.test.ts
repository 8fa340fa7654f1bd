import { type Channel, type ChannelModel, connect } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PoisonMessageError, startNotificationsConsumer } from "../examples/notifications-consumer.ts";
import type { EventEnvelope } from "../src/events/types.ts";
import { waitFor } from "./support/outbox.ts";
import { serviceUrl } from "./support/services.ts";

const amqpUrl = serviceUrl("TEST_AMQP_URL");

describe.runIf(amqpUrl)("notifications consumer example on RabbitMQ", () => {
  const suffix = crypto.randomUUID().slice(0, 8);
  const exchange = `cinema.events.test.${suffix}`;
  const queue = `notifications.test.${suffix}`;
  const handled: string[] = [];
  const attempts = new Map<string, number>();
  const behaviour = new Map<string, (attempt: number) => void>();
  let connection: ChannelModel;
  let channel: Channel;
  let consumer: Awaited<ReturnType<typeof startNotificationsConsumer>>;

  beforeAll(async () => {
    consumer = await startNotificationsConsumer({
      url: amqpUrl as string,
      exchange,
      queue,
      bindings: ["#"],
      retryDelaysMs: [50, 150],
      handle: async (event) => {
        const attempt = (attempts.get(event.id) ?? 0) + 1;
        attempts.set(event.id, attempt);
        behaviour.get(event.id)?.(attempt);
        handled.push(event.id);
      },
    });
    connection = await connect(amqpUrl as string);
    channel = await connection.createChannel();
  });

  afterAll(async () => {
    await consumer?.stop();
    for (const name of [consumer.queues.main, consumer.queues.parked, ...consumer.queues.retry]) {
      await channel.deleteQueue(name).catch(() => {});
    }
    for (const name of [exchange, consumer.queues.parked, `${queue}.retry`]) {
      await channel.deleteExchange(name).catch(() => {});
    }
    await connection?.close();
  });

  const send = (event: EventEnvelope, content = Buffer.from(JSON.stringify(event))) =>
    channel.publish(exchange, event.type, content, {
      messageId: event.id,
      persistent: true,
      contentType: "application/json",
    });

  const event = (): EventEnvelope => ({
    id: crypto.randomUUID(),
    type: "payment.confirmed",
    occurredAt: new Date().toISOString(),
    data: {
      reservationId: crypto.randomUUID(),
      saleId: crypto.randomUUID(),
      sessionId: crypto.randomUUID(),
      userId: "alice",
      seatIds: [],
      amount: 25,
      paidAt: new Date().toISOString(),
    },
  });

  const parkedIds = async () => {
    const ids: string[] = [];
    for (;;) {
      const message = await channel.get(consumer.queues.parked, { noAck: true });
      if (!message) return ids;
      ids.push(message.properties.messageId);
    }
  };

  it("handles an event once even when it is delivered twice", async () => {
    const once = event();
    send(once);
    send(once);
    await waitFor(() => handled.includes(once.id), 5_000, "delivery");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handled.filter((id) => id === once.id)).toHaveLength(1);
    expect(attempts.get(once.id)).toBe(1);
  });

  it("retries a failing handler with backoff and succeeds without parking", async () => {
    const flaky = event();
    const times: number[] = [];
    behaviour.set(flaky.id, (attempt) => {
      times.push(Date.now());
      if (attempt < 3) throw new Error("mail server busy");
    });
    send(flaky);
    await waitFor(() => handled.includes(flaky.id), 5_000, "eventual success");
    expect(attempts.get(flaky.id)).toBe(3);
    const [first = 0, second = 0, third = 0] = times;
    expect(second - first).toBeGreaterThanOrEqual(45);
    expect(third - second).toBeGreaterThanOrEqual(140);
    expect(await parkedIds()).not.toContain(flaky.id);
  });

  it("parks a message that keeps failing after its retries, and poison messages at once", async () => {
    const hopeless = event();
    behaviour.set(hopeless.id, () => {
      throw new Error("always down");
    });
    const poison = event();
    behaviour.set(poison.id, () => {
      throw new PoisonMessageError("unknown user");
    });
    const garbled = event();
    send(hopeless);
    send(poison);
    send(garbled, Buffer.from("{not json"));

    const parked: string[] = [];
    await waitFor(
      async () => {
        parked.push(...(await parkedIds()));
        return [hopeless.id, poison.id, garbled.id].every((id) => parked.includes(id));
      },
      5_000,
      "parked messages",
    );
    expect(attempts.get(hopeless.id)).toBe(3);
    expect(attempts.get(poison.id)).toBe(1);
    expect(attempts.has(garbled.id)).toBe(false);
    expect(handled).not.toContain(hopeless.id);
    const main = await channel.checkQueue(consumer.queues.main);
    expect(main.messageCount).toBe(0);
  });
});
