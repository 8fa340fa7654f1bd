import type { Executor } from "../db/database.ts";
import type { HealthCheck } from "../ports.ts";
import { readOutboxBacklog } from "./outbox-queries.ts";
import type { Relay } from "./relay.ts";

/**
 * `/health` entries for event delivery. Neither is required: with RabbitMQ down the API keeps
 * selling and the outbox keeps every event until the relay catches up, so the service is degraded,
 * not down.
 */
export function relayHealthChecks(
  db: Executor,
  relay: Relay,
  options: { maxLagSeconds?: number } = {},
): HealthCheck[] {
  const maxLagSeconds = options.maxLagSeconds ?? 60;
  return [
    {
      name: "rabbitmq",
      required: false,
      check: async () => {
        const status = relay.status();
        if (status.brokerConnected) return "ok";
        if (status.lastError) throw new Error(`unreachable: ${status.lastError}`);
        return { degraded: "connecting" };
      },
    },
    {
      name: "outbox",
      required: false,
      check: async () => {
        const { pending, lagSeconds } = await readOutboxBacklog(db);
        if (lagSeconds <= maxLagSeconds) return "ok";
        return { degraded: `${pending} events pending, oldest ${Math.round(lagSeconds)} s old` };
      },
    },
  ];
}
