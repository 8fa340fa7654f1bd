import { createRoute, z } from "@hono/zod-openapi";
import { assignCategories } from "../../booking/categories.ts";
import { requestFingerprint } from "../../booking/idempotency.ts";
import { hasAtMostTwoDecimals } from "../../booking/money.ts";
import { MAX_SEATS_PER_SESSION } from "../../booking/seat-grid.ts";
import {
  createSession,
  decodeCursor,
  getSeatStatuses,
  getSession,
  listSessions,
  sessionCategories,
} from "../../booking/sessions.ts";
import type { AppDeps } from "../../ports.ts";
import { bearerSecurity, buyerOf, guard } from "../access.ts";
import { seatMapNotModified } from "../conditional.ts";
import { answerProblem, bookingProblem, invalidInput } from "../problem.ts";
import { createRouter } from "../router.ts";
import {
  BODY_PROBLEMS,
  IDEMPOTENT_REPLAYED_HEADER,
  IdempotencyKeyHeader,
  Instant,
  json,
  problems,
  REQUEST_ID_HEADER,
  SeatStatuses,
  SessionDetail,
  SessionPage,
  storableText,
  Uuid,
} from "../schemas.ts";
import { streamHandler, streamRoute } from "./stream.ts";

const Money = z.number().min(0).max(1_000_000).refine(hasAtMostTwoDecimals, "must have at most two decimals");

const MAX_CATEGORIES = 20;

const NewCategory = z
  .strictObject({
    key: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "1-32 lowercase letters, digits, _ or -")
      .openapi({ example: "premium" }),
    name: storableText().trim().min(1).max(64).openapi({ example: "Premium" }),
    price: Money.openapi({ example: 18 }),
    rows: z
      .array(z.string().regex(/^[A-Z]{1,3}$/, "a row label such as A or AB"))
      .max(1_000)
      .optional()
      .openapi({ example: ["E", "F"] }),
    seats: z
      .array(
        z
          .string()
          .regex(/^[A-Z]{1,3}\d{1,5}(-([A-Z]{1,3})?\d{1,5})?$/, "a seat (C5) or a range in one row (C1-C8)"),
      )
      .max(1_000)
      .optional()
      .openapi({ example: ["D4-D9"] }),
  })
  .openapi("NewCategory", {
    description:
      "A price category and the rows or seat ranges it covers. One category may name no rows or " +
      "seats: it takes every seat no other names (with `price` given, a `standard` category does).",
  });

const NewSession = z
  .strictObject({
    movieId: storableText().trim().min(1).max(128).openapi({ example: "dune-part-two" }),
    room: storableText().trim().min(1).max(100).openapi({ example: "Room 1" }),
    startsAt: Instant.openapi({ example: "2026-12-24T20:00:00Z" }),
    price: Money.optional().openapi({
      example: 12.5,
      description: "The price of every seat no category names; required without categories",
    }),
    rowsCount: z.number().int().min(1).max(MAX_SEATS_PER_SESSION).openapi({ example: 10 }),
    seatsPerRow: z.number().int().min(1).max(MAX_SEATS_PER_SESSION).openapi({ example: 12 }),
    categories: z.array(NewCategory).min(1).max(MAX_CATEGORIES).optional(),
  })
  .superRefine(
    (session, context) => {
      if (session.rowsCount * session.seatsPerRow > MAX_SEATS_PER_SESSION) {
        context.addIssue({
          code: "custom",
          message: `a session has at most ${MAX_SEATS_PER_SESSION} seats`,
          path: ["seatsPerRow"],
        });
        return;
      }
      if (session.price === undefined && session.categories === undefined) {
        context.addIssue({
          code: "custom",
          message: "required unless categories are given",
          path: ["price"],
        });
        return;
      }
      const assigned = assignCategories(session, sessionCategories(session));
      if (!assigned.ok) context.addIssue({ code: "custom", message: assigned.message, path: ["categories"] });
    },
    // A failed min() or max() does not abort zod's parse: without this, a negative rowsCount would
    // reach the grid arithmetic above (a RangeError, a 500) instead of its own 400.
    { when: (payload) => payload.issues.length === 0 },
  )
  .openapi("NewSession");

const create = createRoute({
  method: "post",
  path: "/sessions",
  tags: ["sessions"],
  summary: "Create a session and its seat grid",
  description: "Organisers only when auth is on (the `organizer` role in the token's roles claim).",
  security: bearerSecurity,
  middleware: [guard({ who: "organiser", limit: "sessions" })] as const,
  request: {
    headers: IdempotencyKeyHeader,
    body: { required: true, content: { "application/json": { schema: NewSession } } },
  },
  responses: {
    201: json(SessionDetail, "The session with its seats", IDEMPOTENT_REPLAYED_HEADER),
    ...problems(
      ...BODY_PROBLEMS,
      "UNAUTHENTICATED",
      "FORBIDDEN",
      "IDEMPOTENCY_KEY_REUSED",
      "IDEMPOTENCY_KEY_IN_USE",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const list = createRoute({
  method: "get",
  path: "/sessions",
  tags: ["sessions"],
  summary: "List sessions by start time",
  middleware: [guard({ who: "anyone", limit: "reads" })] as const,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().max(512).optional().openapi({ description: "`nextCursor` of the previous page" }),
    }),
  },
  responses: {
    200: json(SessionPage, "One page of sessions"),
    ...problems("VALIDATION_FAILED", "UNAUTHENTICATED", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
  },
});

const IfNoneMatch = z.object({
  "if-none-match": z
    .string()
    .max(1024)
    .optional()
    .openapi({ description: "The `ETag` of the seat map the client has: 304 while it is current." }),
});

const seatMapHeaders = {
  ...REQUEST_ID_HEADER,
  ETag: {
    description: "Changes with every change of a seat's status in the session",
    schema: { type: "string" as const },
  },
  "Cache-Control": {
    description: "A shared cache may keep the map for one second",
    schema: { type: "string" as const },
  },
};

const notModified = {
  description: "The seat map is unchanged since the ETag given",
  headers: seatMapHeaders,
};

const show = createRoute({
  method: "get",
  path: "/sessions/{id}",
  tags: ["sessions"],
  summary: "A session with its seat map",
  middleware: [guard({ who: "anyone", limit: "reads" })] as const,
  request: { params: z.object({ id: Uuid }), headers: IfNoneMatch },
  responses: {
    200: { ...json(SessionDetail, "The session, its seat statuses and counts"), headers: seatMapHeaders },
    304: notModified,
    ...problems(
      "VALIDATION_FAILED",
      "UNAUTHENTICATED",
      "SESSION_NOT_FOUND",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

const seatStatuses = createRoute({
  method: "get",
  path: "/sessions/{id}/seats",
  tags: ["sessions"],
  summary: "Only the statuses of a session's seats, for polling (ETag, 304)",
  middleware: [guard({ who: "anyone", limit: "reads" })] as const,
  request: { params: z.object({ id: Uuid }), headers: IfNoneMatch },
  responses: {
    200: { ...json(SeatStatuses, "Every seat's status and the counts"), headers: seatMapHeaders },
    304: notModified,
    ...problems(
      "VALIDATION_FAILED",
      "UNAUTHENTICATED",
      "SESSION_NOT_FOUND",
      "RATE_LIMITED",
      "SERVICE_UNAVAILABLE",
    ),
  },
});

export function sessionRoutes(deps: AppDeps) {
  return createRouter()
    .openapi(create, async (c) => {
      const body = c.req.valid("json");
      const key = c.req.valid("header")["idempotency-key"];
      const organiser = buyerOf(c);
      const startsAt = new Date(body.startsAt);
      // Fingerprinted as read: one instant written with another offset is the same request.
      const idempotency =
        key === undefined
          ? undefined
          : {
              scope: `POST /sessions${organiser ? ` user=${organiser}` : ""}`,
              key,
              requestHash: await requestFingerprint({ ...body, startsAt: startsAt.toISOString() }),
            };
      const created = await createSession(deps.db, { ...body, startsAt }, idempotency);
      if (!created.ok) return answerProblem(c, bookingProblem(created.error));
      if (created.value.replayed) {
        c.header("Idempotent-Replayed", "true");
        c.set("replayed", true);
      }
      return c.json(created.value.view, 201);
    })
    .openapi(list, async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      if (cursor !== undefined && !after) throw invalidInput("cursor", "not a cursor this API issued");
      return c.json(await listSessions(deps.db, { limit, after }), 200);
    })
    .openapi(show, async (c) => {
      const session = await getSession(deps.db, c.req.valid("param").id.toLowerCase());
      if (!session.ok) return answerProblem(c, bookingProblem(session.error));
      const { version, ...view } = session.value;
      const unchanged = seatMapNotModified(c, version);
      if (unchanged) return unchanged as never;
      return c.json(view, 200);
    })
    .openapi(seatStatuses, async (c) => {
      const statuses = await getSeatStatuses(deps.db, c.req.valid("param").id.toLowerCase());
      if (!statuses.ok) return answerProblem(c, bookingProblem(statuses.error));
      const { version, ...view } = statuses.value;
      const unchanged = seatMapNotModified(c, version);
      if (unchanged) return unchanged as never;
      return c.json(view, 200);
    })
    .openapi(streamRoute, streamHandler(deps) as never);
}
