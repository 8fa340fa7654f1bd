import { type ChannelModel, connect } from "amqplib";

export type CapturedMessage = {
  messageId: string;
  routingKey: string;
  body: { id: string; type: string; occurredAt: string; data: Record<string, unknown> };
  contentType: string | undefined;
  deliveryMode: number | undefined;
  type: string | undefined;
  headers: Record<string, unknown>;
};

/**
 * A private events exchange (the relay is pointed at it instead of `cinema.events`) with one
 * exclusive queue bound to every routing key, recording messages in arrival order. Each suite
 * gets its own names, so parallel test files never see each other's events.
 */
export async function openEventCapture(url: string) {
  const exchange = `cinema.events.test.${crypto.randomUUID().slice(0, 8)}`;
  const connection: ChannelModel = await connect(url);
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, "topic", { durable: true });
  const { queue } = await channel.assertQueue("", { exclusive: true });
  await channel.bindQueue(queue, exchange, "#");
  const messages: CapturedMessage[] = [];
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      messages.push({
        messageId: message.properties.messageId,
        routingKey: message.fields.routingKey,
        body: JSON.parse(message.content.toString("utf8")),
        contentType: message.properties.contentType,
        deliveryMode: message.properties.deliveryMode,
        type: message.properties.type,
        headers: message.properties.headers ?? {},
      });
    },
    { noAck: true },
  );
  return {
    exchange,
    messages,
    close: async () => {
      await channel.deleteExchange(exchange).catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}
