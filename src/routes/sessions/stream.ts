import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { createSeatWatch, type SeatChange, type SeatWatch } from "../../booking/seat-watch.ts";
import type { AppDeps } from "../../ports.ts";
import { guard } from "../access.ts";
import { ApiError, answerProblem, bookingProblem } from "../problem.ts";
import { problems, Uuid } from "../schemas.ts";

export const DEFAULT_HEARTBEAT_MS = 15_000;

export const streamRoute = createRoute({
  method: "get",
  path: "/sessions/{id}/stream",
  tags: ["sessions"],
  summary: "Seat changes of a session as Server-Sent Events, whichever instance made them",
  description:
    "The first event (`snapshot`) carries every seat's status; each later `change` event carries the " +
    "seats whose status changed. Every event's `id` is the seat map's version (the `ETag` of " +
    "`GET /sessions/{id}/seats`): a client reconnecting with `Last-Event-ID` equal to the current " +
    "version gets no snapshot, any other gets one. A comment line is sent as a heartbeat every 15 s. " +
    "Where the instance cannot be told of changes (Cloudflare Workers) it answers 501 " +
    "`STREAM_NOT_AVAILABLE`: poll `GET /sessions/{id}/seats` with `If-None-Match` instead.",
  middleware: [guard({ who: "anyone", limit: "reads" })] as const,
  request: {
    params: z.object({ id: Uuid }),
    headers: z.object({ "last-event-id": z.string().max(200).optional() }),
  },
  responses: {
    200: { description: "text/event-stream", content: { "text/event-stream": { schema: z.string() } } },
    ...problems(
      "VALIDATION_FAILED",
      "UNAUTHENTICATED",
      "SESSION_NOT_FOUND",
      "STREAM_NOT_AVAILABLE",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

/** The stream's handler; one watch per app, shared by every stream of the instance. */
export function streamHandler(deps: AppDeps) {
  let watch: SeatWatch | undefined;
  return async (c: Context) => {
    const hints = deps.seatChangeHints;
    if (!hints) {
      throw new ApiError(
        "STREAM_NOT_AVAILABLE",
        "This instance cannot stream seat changes; poll GET /sessions/{id}/seats with If-None-Match.",
      );
    }
    watch ??= createSeatWatch({ db: deps.db, hints });
    const sessionId = (c.req.param("id") as string).toLowerCase();
    const pending: SeatChange[] = [];
    let wake: (() => void) | undefined;
    const watching = await watch.watch(sessionId, (change) => {
      pending.push(change);
      wake?.();
    });
    if (!watching) return answerProblem(c, bookingProblem({ code: "SESSION_NOT_FOUND", sessionId }));
    const heartbeatMs = deps.seatStreamHeartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    c.header("X-Accel-Buffering", "no");
    let closing = false;
    const stopOnClose = hints.onClose?.(() => {
      closing = true;
      wake?.();
    });
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => wake?.());
      try {
        const { map } = watching;
        if (c.req.header("last-event-id") !== map.version) {
          await stream.writeSSE({
            event: "snapshot",
            id: map.version,
            retry: 1_000,
            data: JSON.stringify({
              version: map.version,
              counts: map.counts,
              seats: map.seats.map((seat) => ({ id: seat.id, status: seat.status })),
            }),
          });
        }
        // Changes are written in the order they were seen; a heartbeat when nothing happened.
        while (!stream.aborted && !stream.closed && !closing) {
          const change = pending.shift();
          if (change) {
            await stream.writeSSE({ event: "change", id: change.version, data: JSON.stringify(change) });
            continue;
          }
          const beat = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), heartbeatMs);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          wake = undefined;
          if (beat && !stream.aborted) await stream.write(": heartbeat\n\n");
        }
      } finally {
        watching.stop();
        stopOnClose?.();
      }
    });
  };
}
