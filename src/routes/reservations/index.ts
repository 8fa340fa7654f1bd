import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { holdBestAvailable } from "../../booking/best-available.ts";
import { cancelReservation } from "../../booking/cancel.ts";
import type { Outcome } from "../../booking/deps.ts";
import type { Result } from "../../booking/errors.ts";
import { holdSeats } from "../../booking/hold.ts";
import { extendHold, releaseHeldSeat } from "../../booking/hold-changes.ts";
import { type IdempotencyRequest, requestFingerprint } from "../../booking/idempotency.ts";
import { payReservation } from "../../booking/pay.ts";
import { getReservation, listUserReservations } from "../../booking/reservations.ts";
import type { ReservationView } from "../../booking/views.ts";
import type { AppDeps } from "../../ports.ts";
import {
  actingUser,
  bearerSecurity,
  buyerOf,
  guard,
  isOrganiser,
  requireBuyer,
  requireSelfOrOrganiser,
} from "../access.ts";
import { answerProblem, bookingProblem, invalidInput } from "../problem.ts";
import { createRouter } from "../router.ts";
import {
  BODY_PROBLEMS,
  IDEMPOTENT_REPLAYED_HEADER,
  IdempotencyKeyHeader,
  json,
  ListLimit,
  problems,
  Reservation,
  storableText,
  UserId,
  Uuid,
} from "../schemas.ts";

export const MAX_SEATS_PER_RESERVATION = 10;

const NewReservation = z
  .strictObject({
    userId: UserId.optional().openapi({
      description: "With auth on: optional, and when given the token's subject. Open mode: required.",
    }),
    seatIds: z
      .array(Uuid)
      .min(1, "hold at least one seat")
      .max(MAX_SEATS_PER_RESERVATION, `hold at most ${MAX_SEATS_PER_RESERVATION} seats at once`)
      .refine(
        (ids) => new Set(ids.map((id) => id.toLowerCase())).size === ids.length,
        "must not repeat a seat",
      )
      .optional()
      .openapi({ description: "The seats to hold; or leave them out and ask for the best `quantity`" }),
    sessionId: Uuid.optional().openapi({ description: "Best available: the session" }),
    quantity: z
      .number()
      .int()
      .min(1)
      .max(MAX_SEATS_PER_RESERVATION)
      .optional()
      .openapi({ description: "Best available: how many seats, next to each other where possible" }),
    category: storableText()
      .min(1)
      .max(32)
      .optional()
      .openapi({ description: "Best available: only seats of this price category (its key)" }),
  })
  .superRefine((body, context) => {
    const bestAvailable =
      body.sessionId !== undefined || body.quantity !== undefined || body.category !== undefined;
    if (body.seatIds !== undefined && bestAvailable) {
      context.addIssue({ code: "custom", message: "give seatIds, or sessionId and quantity, not both" });
    } else if (body.seatIds === undefined && (body.sessionId === undefined || body.quantity === undefined)) {
      context.addIssue({
        code: "custom",
        message: "give seatIds, or sessionId and quantity (best available)",
      });
    }
  })
  .openapi("NewReservation", {
    description:
      "Either `seatIds` (those seats, all or none) or `sessionId` + `quantity` (+ `category`): the best " +
      "available seats, adjacent in one row without stranding a single seat where possible, closest " +
      "to the centre of the front row.",
  });

const OwnerCheck = z
  .strictObject({
    userId: UserId.optional().openapi({
      description: "When given, must own the reservation (with auth on: be the token's subject)",
    }),
  })
  .openapi("OwnerCheck");

const ReservationId = z.object({ id: Uuid });

const hold = createRoute({
  method: "post",
  path: "/reservations",
  tags: ["reservations"],
  summary: "Hold seats of one session, all or none",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "holds" })] as const,
  request: {
    headers: IdempotencyKeyHeader,
    body: { required: true, content: { "application/json": { schema: NewReservation } } },
  },
  responses: {
    201: json(Reservation, "The hold, PENDING until expiresAt", IDEMPOTENT_REPLAYED_HEADER),
    ...problems(
      ...BODY_PROBLEMS,
      "UNAUTHENTICATED",
      "USER_MISMATCH",
      "SEAT_NOT_FOUND",
      "SEATS_FROM_MULTIPLE_SESSIONS",
      "SEAT_UNAVAILABLE",
      "SESSION_NOT_FOUND",
      "CATEGORY_NOT_FOUND",
      "NOT_ENOUGH_SEATS",
      "SEATS_CONTENDED",
      "IDEMPOTENCY_KEY_IN_USE",
      "IDEMPOTENCY_KEY_REUSED",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const show = createRoute({
  method: "get",
  path: "/reservations/{id}",
  tags: ["reservations"],
  summary: "A reservation; a hold past its time reads EXPIRED",
  description: "Only its owner (and organisers) can read it; to anyone else it does not exist (404).",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "reads" })] as const,
  request: { params: ReservationId },
  responses: {
    200: json(Reservation, "The reservation"),
    ...problems(
      "VALIDATION_FAILED",
      "UNAUTHENTICATED",
      "RESERVATION_NOT_FOUND",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const pay = createRoute({
  method: "post",
  path: "/reservations/{id}/pay",
  tags: ["reservations"],
  summary: "Pay a live hold; paying again returns the same sale",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "payments" })] as const,
  request: {
    params: ReservationId,
    headers: IdempotencyKeyHeader,
    body: { required: false, content: { "application/json": { schema: OwnerCheck } } },
  },
  responses: {
    200: json(Reservation, "The CONFIRMED reservation and its sale", IDEMPOTENT_REPLAYED_HEADER),
    ...problems(
      ...BODY_PROBLEMS,
      "UNAUTHENTICATED",
      "USER_MISMATCH",
      "RESERVATION_NOT_OWNED",
      "RESERVATION_NOT_FOUND",
      "RESERVATION_EXPIRED",
      "RESERVATION_CANCELLED",
      "IDEMPOTENCY_KEY_IN_USE",
      "IDEMPOTENCY_KEY_REUSED",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/reservations/{id}/cancel",
  tags: ["reservations"],
  summary: "Give a live hold back before it expires",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "holds" })] as const,
  request: {
    params: ReservationId,
    headers: IdempotencyKeyHeader,
    body: { required: false, content: { "application/json": { schema: OwnerCheck } } },
  },
  responses: {
    200: json(Reservation, "The CANCELLED reservation", IDEMPOTENT_REPLAYED_HEADER),
    ...problems(
      ...BODY_PROBLEMS,
      "UNAUTHENTICATED",
      "USER_MISMATCH",
      "RESERVATION_NOT_OWNED",
      "RESERVATION_NOT_FOUND",
      "RESERVATION_EXPIRED",
      "RESERVATION_CONFIRMED",
      "IDEMPOTENCY_KEY_IN_USE",
      "IDEMPOTENCY_KEY_REUSED",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const byUser = createRoute({
  method: "get",
  path: "/reservations/user/{userId}",
  tags: ["reservations"],
  summary: "A user's reservations, newest first",
  description: "With auth on: only for that user (the token's subject) or an organiser.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "reads" })] as const,
  request: { params: z.object({ userId: UserId }), query: z.object({ limit: ListLimit }) },
  responses: {
    200: json(z.array(Reservation), "The reservations"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

const mine = createRoute({
  method: "get",
  path: "/me/reservations",
  tags: ["reservations"],
  summary: "The token's buyer's reservations, newest first",
  description: "Needs a bearer token; in open mode (no auth configured) there is no 'me': 401.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "reads" })] as const,
  request: { query: z.object({ limit: ListLimit }) },
  responses: {
    200: json(z.array(Reservation), "The reservations"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

const Extension = z
  .strictObject({
    seconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .openapi({ example: 120, description: "The hold then ends this long from now (capped)" }),
    userId: UserId.optional().openapi({
      description: "When given, must own the reservation (with auth on: be the token's subject)",
    }),
  })
  .openapi("Extension");

const extend = createRoute({
  method: "post",
  path: "/reservations/{id}/extend",
  tags: ["reservations"],
  summary: "Extend a live hold, up to HOLD_MAX_SECONDS after its creation",
  description:
    "The hold then ends `seconds` from now, but never later than `HOLD_MAX_SECONDS` (600 s by " +
    "default) after it was created, and never earlier than it already did. Its claims, seat locks " +
    "and expiry callback move with it. A paid, cancelled or expired hold answers 409.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "holds" })] as const,
  request: {
    params: ReservationId,
    headers: IdempotencyKeyHeader,
    body: { required: true, content: { "application/json": { schema: Extension } } },
  },
  responses: {
    200: json(Reservation, "The PENDING reservation with its new expiresAt", IDEMPOTENT_REPLAYED_HEADER),
    ...problems(
      ...BODY_PROBLEMS,
      "UNAUTHENTICATED",
      "USER_MISMATCH",
      "RESERVATION_NOT_OWNED",
      "RESERVATION_NOT_FOUND",
      "RESERVATION_EXPIRED",
      "RESERVATION_CANCELLED",
      "RESERVATION_CONFIRMED",
      "IDEMPOTENCY_KEY_IN_USE",
      "IDEMPOTENCY_KEY_REUSED",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const releaseSeat = createRoute({
  method: "delete",
  path: "/reservations/{id}/seats/{seatId}",
  tags: ["reservations"],
  summary: "Give one seat of a live hold back at once",
  description:
    "The seat is free at once; the hold keeps its other seats and its total drops by the seat's " +
    "price. Releasing the last seat cancels the hold (the answer is the CANCELLED reservation). " +
    "A paid, cancelled or expired hold answers 409; a seat the hold does not have, 404.",
  security: bearerSecurity,
  middleware: [guard({ who: "buyer", limit: "holds" })] as const,
  request: {
    params: z.object({ id: Uuid, seatId: Uuid }),
    query: z.object({
      userId: UserId.optional().openapi({
        description: "When given, must own the reservation (with auth on: be the token's subject)",
      }),
    }),
  },
  responses: {
    200: json(Reservation, "The reservation without that seat"),
    ...problems(
      "VALIDATION_FAILED",
      "UNAUTHENTICATED",
      "USER_MISMATCH",
      "RESERVATION_NOT_OWNED",
      "RESERVATION_NOT_FOUND",
      "SEAT_NOT_IN_RESERVATION",
      "RESERVATION_EXPIRED",
      "RESERVATION_CANCELLED",
      "RESERVATION_CONFIRMED",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

/**
 * The fingerprint is taken over the request as the booking reads it (uuids lower-cased, the
 * acting user resolved), not over the raw body: a retry that spells a seat id in upper case, or
 * names the token's own user, is the same request.
 */
async function idempotencyFor(
  key: string | undefined,
  scope: string,
  request: Record<string, unknown>,
): Promise<IdempotencyRequest | undefined> {
  if (key === undefined) return undefined;
  return { scope, key, requestHash: await requestFingerprint(request) };
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
      const userId = actingUser(c, body.userId);
      if (userId === undefined) throw invalidInput("userId", "required");
      const key = c.req.valid("header")["idempotency-key"];
      const scope = `POST /reservations user=${userId}`;
      if (body.seatIds === undefined) {
        const best = {
          userId,
          sessionId: (body.sessionId as string).toLowerCase(),
          quantity: body.quantity as number,
          category: body.category,
        };
        const idempotency = await idempotencyFor(key, scope, best);
        return answer(c, await holdBestAvailable(deps, best, idempotency), 201);
      }
      const request = { userId, seatIds: body.seatIds.map((id) => id.toLowerCase()) };
      return answer(c, await holdSeats(deps, request, await idempotencyFor(key, scope, request)), 201);
    })
    .openapi(show, async (c) => {
      const owner = isOrganiser(c) ? undefined : buyerOf(c);
      const reservation = await getReservation(deps.db, c.req.valid("param").id, owner);
      if (!reservation.ok) return answerProblem(c, bookingProblem(reservation.error));
      return c.json(reservation.value, 200);
    })
    .openapi(pay, async (c) => {
      const reservationId = c.req.valid("param").id.toLowerCase();
      const body = c.req.valid("json") ?? {};
      const buyerId = buyerOf(c);
      const userId = actingUser(c, body.userId);
      const key = c.req.valid("header")["idempotency-key"];
      const scope = `POST /reservations/${reservationId}/pay${buyerId ? ` user=${buyerId}` : ""}`;
      const idempotency = await idempotencyFor(key, scope, { userId });
      return answer(c, await payReservation(deps, { reservationId, userId, buyerId }, idempotency), 200);
    })
    .openapi(cancel, async (c) => {
      const reservationId = c.req.valid("param").id.toLowerCase();
      const body = c.req.valid("json") ?? {};
      const buyerId = buyerOf(c);
      const userId = actingUser(c, body.userId);
      const key = c.req.valid("header")["idempotency-key"];
      const scope = `POST /reservations/${reservationId}/cancel${buyerId ? ` user=${buyerId}` : ""}`;
      const idempotency = await idempotencyFor(key, scope, { userId });
      return answer(c, await cancelReservation(deps, { reservationId, userId, buyerId }, idempotency), 200);
    })
    .openapi(byUser, async (c) => {
      const { userId } = c.req.valid("param");
      requireSelfOrOrganiser(c, userId);
      return c.json(await listUserReservations(deps.db, userId, c.req.valid("query").limit), 200);
    })
    .openapi(mine, async (c) => {
      const buyer = requireBuyer(c);
      return c.json(await listUserReservations(deps.db, buyer, c.req.valid("query").limit), 200);
    })
    .openapi(extend, async (c) => {
      const reservationId = c.req.valid("param").id.toLowerCase();
      const body = c.req.valid("json");
      const buyerId = buyerOf(c);
      const userId = actingUser(c, body.userId);
      const key = c.req.valid("header")["idempotency-key"];
      const scope = `POST /reservations/${reservationId}/extend${buyerId ? ` user=${buyerId}` : ""}`;
      const idempotency = await idempotencyFor(key, scope, { userId, seconds: body.seconds });
      const request = { reservationId, userId, buyerId, seconds: body.seconds };
      return answer(c, await extendHold(deps, request, idempotency), 200);
    })
    .openapi(releaseSeat, async (c) => {
      const params = c.req.valid("param");
      const userId = actingUser(c, c.req.valid("query").userId);
      const released = await releaseHeldSeat(deps, {
        reservationId: params.id.toLowerCase(),
        seatId: params.seatId.toLowerCase(),
        userId,
        buyerId: buyerOf(c),
      });
      if (!released.ok) return answerProblem(c, bookingProblem(released.error));
      return c.json(released.value, 200);
    });
}
