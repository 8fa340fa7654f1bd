import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { cancelReservation } from "../../booking/cancel.ts";
import type { Outcome } from "../../booking/deps.ts";
import type { Result } from "../../booking/errors.ts";
import { holdSeats } from "../../booking/hold.ts";
import { type IdempotencyRequest, requestFingerprint } from "../../booking/idempotency.ts";
import { payReservation } from "../../booking/pay.ts";
import { getReservation, listUserReservations } from "../../booking/reservations.ts";
import type { ReservationView } from "../../booking/views.ts";
import type { AppDeps } from "../../ports.ts";
import { answerProblem, bookingProblem } from "../problem.ts";
import { createRouter } from "../router.ts";
import { IdempotencyKeyHeader, json, ListLimit, problems, Reservation, UserId, Uuid } from "../schemas.ts";

export const MAX_SEATS_PER_RESERVATION = 10;

const NewReservation = z
  .strictObject({
    userId: UserId,
    seatIds: z
      .array(Uuid)
      .min(1, "hold at least one seat")
      .max(MAX_SEATS_PER_RESERVATION, `hold at most ${MAX_SEATS_PER_RESERVATION} seats at once`)
      .refine(
        (ids) => new Set(ids.map((id) => id.toLowerCase())).size === ids.length,
        "must not repeat a seat",
      ),
  })
  .openapi("NewReservation");

const OwnerCheck = z
  .strictObject({
    userId: UserId.optional().openapi({ description: "When given, must own the reservation" }),
  })
  .openapi("OwnerCheck");

const ReservationId = z.object({ id: Uuid });

const hold = createRoute({
  method: "post",
  path: "/reservations",
  tags: ["reservations"],
  summary: "Hold seats of one session, all or none",
  request: {
    headers: IdempotencyKeyHeader,
    body: { required: true, content: { "application/json": { schema: NewReservation } } },
  },
  responses: {
    201: json(Reservation, "The hold, PENDING until expiresAt"),
    ...problems(400, 404, 409, 413, 415, 422, 503),
  },
});

const show = createRoute({
  method: "get",
  path: "/reservations/{id}",
  tags: ["reservations"],
  summary: "A reservation; a hold past its time reads EXPIRED",
  request: { params: ReservationId },
  responses: { 200: json(Reservation, "The reservation"), ...problems(400, 404) },
});

const pay = createRoute({
  method: "post",
  path: "/reservations/{id}/pay",
  tags: ["reservations"],
  summary: "Pay a live hold; paying again returns the same sale",
  request: {
    params: ReservationId,
    headers: IdempotencyKeyHeader,
    body: { required: false, content: { "application/json": { schema: OwnerCheck } } },
  },
  responses: {
    200: json(Reservation, "The CONFIRMED reservation and its sale"),
    ...problems(400, 403, 404, 409, 415, 422, 503),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/reservations/{id}/cancel",
  tags: ["reservations"],
  summary: "Give a live hold back before it expires",
  request: {
    params: ReservationId,
    body: { required: false, content: { "application/json": { schema: OwnerCheck } } },
  },
  responses: { 200: json(Reservation, "The CANCELLED reservation"), ...problems(400, 403, 404, 409, 415) },
});

const byUser = createRoute({
  method: "get",
  path: "/reservations/user/{userId}",
  tags: ["reservations"],
  summary: "A user's reservations, newest first",
  request: { params: z.object({ userId: UserId }), query: z.object({ limit: ListLimit }) },
  responses: { 200: json(z.array(Reservation), "The reservations"), ...problems(400) },
});

async function idempotencyFor(
  key: string | undefined,
  scope: string,
  body: unknown,
): Promise<IdempotencyRequest | undefined> {
  if (key === undefined) return undefined;
  return { scope, key, requestHash: await requestFingerprint(body) };
}

/** A booking's answer: the reservation with its status, or the problem of a refusal. */
function answer<S extends 200 | 201>(c: Context, result: Result<Outcome<ReservationView>>, status: S) {
  if (!result.ok) return answerProblem(c, bookingProblem(result.error));
  if (result.value.replayed) {
    c.header("Idempotent-Replayed", "true");
    c.set("replayed", true);
  }
  return c.json(result.value.view, status);
}

export function reservationRoutes(deps: AppDeps) {
  return createRouter()
    .openapi(hold, async (c) => {
      const body = c.req.valid("json");
      const key = c.req.valid("header")["idempotency-key"];
      const idempotency = await idempotencyFor(key, `POST /reservations user=${body.userId}`, body);
      const seatIds = body.seatIds.map((id) => id.toLowerCase());
      return answer(c, await holdSeats(deps, { userId: body.userId, seatIds }, idempotency), 201);
    })
    .openapi(show, async (c) => {
      const reservation = await getReservation(deps.db, c.req.valid("param").id);
      if (!reservation.ok) return answerProblem(c, bookingProblem(reservation.error));
      return c.json(reservation.value, 200);
    })
    .openapi(pay, async (c) => {
      const reservationId = c.req.valid("param").id.toLowerCase();
      const body = c.req.valid("json") ?? {};
      const key = c.req.valid("header")["idempotency-key"];
      const idempotency = await idempotencyFor(key, `POST /reservations/${reservationId}/pay`, body);
      return answer(c, await payReservation(deps, { reservationId, userId: body.userId }, idempotency), 200);
    })
    .openapi(cancel, async (c) => {
      const reservationId = c.req.valid("param").id.toLowerCase();
      const body = c.req.valid("json") ?? {};
      const cancelled = await cancelReservation(deps, { reservationId, userId: body.userId });
      if (!cancelled.ok) return answerProblem(c, bookingProblem(cancelled.error));
      return c.json(cancelled.value, 200);
    })
    .openapi(byUser, async (c) => {
      const { userId } = c.req.valid("param");
      return c.json(await listUserReservations(deps.db, userId, c.req.valid("query").limit), 200);
    });
}
