import { createRoute, z } from "@hono/zod-openapi";
import { expireHold } from "../../booking/expire.ts";
import { noTelemetry } from "../../booking/telemetry.ts";
import { EXPIRY_CALLBACK_PATH } from "../../expiry/hold-expiry.ts";
import type { AppDeps } from "../../ports.ts";
import { ApiError } from "../problem.ts";
import { createRouter } from "../router.ts";
import { json, problems, Uuid } from "../schemas.ts";

const ExpiryOutcome = z
  .object({
    reservationId: z.string(),
    outcome: z.enum(["expired", "settled", "not-found"]),
  })
  .openapi("ExpiryOutcome");

const expire = createRoute({
  method: "post",
  path: `${EXPIRY_CALLBACK_PATH}/{reservationId}`,
  tags: ["internal"],
  summary: "QStash callback: expire a hold whose time is up",
  description:
    "Called by QStash at a hold's expiry, never by clients. Answers 401 unless `Upstash-Signature` " +
    "is QStash's signature of this exact URL and body. Idempotent: a paid, cancelled or already " +
    "expired hold is left as it is; a hold with time left answers 409 so that QStash retries later.",
  request: {
    params: z.object({ reservationId: Uuid }),
    headers: z.object({ "upstash-signature": z.string().optional() }),
  },
  responses: {
    200: json(ExpiryOutcome, "What became of the hold"),
    ...problems("VALIDATION_FAILED", "INVALID_SIGNATURE", "NOT_FOUND", "HOLD_NOT_DUE", "SERVICE_UNAVAILABLE"),
  },
});

/** Delayed expiry callbacks; every request is authenticated by its signature before anything is read. */
export function internalRoutes(deps: AppDeps) {
  return createRouter().openapi(expire, async (c) => {
    const callbacks = deps.holdExpiry;
    if (!callbacks) throw new ApiError("NOT_FOUND", "Expiry callbacks are not configured on this instance.");
    const { reservationId } = c.req.valid("param");
    const signature = c.req.valid("header")["upstash-signature"];
    const body = await c.req.text();
    const url = callbacks.callbackUrl(reservationId);
    if (!signature || !(await callbacks.verify({ signature, body, url }))) {
      c.var.logger.warn({ reservationId }, "expiry callback refused: bad or missing signature");
      throw new ApiError(
        "INVALID_SIGNATURE",
        "Upstash-Signature is missing, forged, stale or for another request.",
      );
    }
    const outcome = await expireHold(deps.db, reservationId.toLowerCase(), deps.seatLock);
    if (outcome === "not-due") {
      throw new ApiError("HOLD_NOT_DUE", `Reservation ${reservationId} has time left; retry later.`);
    }
    if (outcome === "expired") (deps.telemetry ?? noTelemetry).holdOutcome("expired");
    return c.json({ reservationId, outcome }, 200);
  });
}
