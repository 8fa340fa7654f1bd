import type { Executor } from "../db/database.ts";
import type { HealthCheck } from "../ports.ts";
import { readOutboxBacklog, secondsSinceLastPublish } from "./outbox-queries.ts";
import type { Relay } from "./relay.ts";

/**
 * `/health` entries for event delivery. Neither is required: with RabbitMQ down, or no relay at
 * all, the API keeps selling and the outbox keeps every event until a relay catches up, so the
 * service is degraded, not down.
 */

/** The broker as this process's relay sees it; only where a relay runs (Node with AMQP_URL). */
export function rabbitmqHealthCheck(relay: Relay): HealthCheck {
  return {
    name: "rabbitmq",
    required: false,
    check: async () => {
      const status = relay.status();
      if (status.brokerConnected) return "ok";
      if (status.lastError) throw new Error(`unreachable: ${status.lastError}`);
      return { degraded: "connecting" };
    },
  };
}

export const OUTBOX_MAX_LAG_SECONDS = 60;

/**
 * The outbox on every instance and runtime: degraded once an event has waited longer than
 * `maxLagSeconds`, saying why. Whether some other process (the sidecar) publishes is read from the
 * outbox itself: nothing published since the oldest waiting event was written means nobody does.
 */
export function outboxHealthCheck(
  database: () => Executor,
  options: { relayInProcess: boolean; maxLagSeconds?: number },
): HealthCheck {
  const maxLagSeconds = options.maxLagSeconds ?? OUTBOX_MAX_LAG_SECONDS;
  return {
    name: "outbox",
    required: false,
    check: async () => {
      const db = database();
      const { pending, lagSeconds } = await readOutboxBacklog(db);
      if (lagSeconds <= maxLagSeconds) return "ok";
      const waiting = `${pending} events pending, oldest ${Math.round(lagSeconds)} s old`;
      if (options.relayInProcess) {
        return { degraded: `${waiting}: the relay cannot keep up or cannot publish (see rabbitmq)` };
      }
      const sincePublish = await secondsSinceLastPublish(db);
      if (sincePublish !== undefined && sincePublish < lagSeconds) {
        return { degraded: `${waiting}: a relay published ${Math.round(sincePublish)} s ago and is behind` };
      }
      return {
        degraded: `${waiting}: no relay configured (set AMQP_URL, or run the sidecar: npm run sidecar)`,
      };
    },
  };
}
