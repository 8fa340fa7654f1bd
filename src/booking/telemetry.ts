/**
 * What the service counts, as a port: the Node entry plugs in prom-client, other runtimes the
 * no-op. Nothing here may block or throw into a booking.
 */
export type HoldOutcome = "created" | "conflict" | "expired" | "paid" | "cancelled";

export type Telemetry = {
  holdOutcome(outcome: HoldOutcome, count?: number): void;
  lockAcquisition(backend: string, result: "acquired" | "conflict" | "error"): void;
  lockFallback(active: boolean, reason?: string): void;
  sweeperRun(expired: number): void;
  idempotentReplay(route: string): void;
};

export const noTelemetry: Telemetry = {
  holdOutcome() {},
  lockAcquisition() {},
  lockFallback() {},
  sweeperRun() {},
  idempotentReplay() {},
};
