import { sql } from "drizzle-orm";
import {
  bigserial,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * A claim's lifetime as a PostgreSQL `tstzrange`. The exclusion constraint on
 * `reservation_seats` (drizzle/0001_claims_exclusion.sql) forbids two overlapping claims on one
 * seat, so the database itself refuses a double sale: a hold claims [now, expiresAt), a sale
 * stretches that to [now, infinity), a cancellation cuts it to [now, cancelledAt).
 * The column is written only through SQL expressions; drizzle reads it as text.
 */
const tstzrange = customType<{ data: string }>({ dataType: () => "tstzrange" });

export const sessions = pgTable(
  "sessions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    movieId: text("movie_id").notNull(),
    room: text("room").notNull(),
    startsAt: timestamp("starts_at", { withTimezone: true, mode: "date" }).notNull(),
    priceCents: integer("price_cents").notNull(),
    rowsCount: integer("rows_count").notNull(),
    seatsPerRow: integer("seats_per_row").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    index("sessions_starts_at_id_idx").on(t.startsAt, t.id),
    check("sessions_price_cents_check", sql`${t.priceCents} >= 0`),
    check("sessions_grid_check", sql`${t.rowsCount} > 0 AND ${t.seatsPerRow} > 0`),
  ],
);

export const seats = pgTable(
  "seats",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    row: text("row").notNull(),
    number: integer("number").notNull(),
    label: text("label").notNull(),
    position: integer("position").notNull(),
    /** The seat's price category (a key of `price_categories`) and that category's price. */
    category: text("category").notNull(),
    priceCents: integer("price_cents").notNull(),
  },
  (t) => [uniqueIndex("seats_session_position_idx").on(t.sessionId, t.position)],
);

/** A session's price categories (drizzle/0009_price_categories.sql); every seat belongs to one. */
export const priceCategories = pgTable(
  "price_categories",
  {
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    name: text("name").notNull(),
    priceCents: integer("price_cents").notNull(),
    position: integer("position").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.key] })],
);

export const reservations = pgTable(
  "reservations",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id),
    userId: text("user_id").notNull(),
    status: text("status", { enum: ["PENDING", "CONFIRMED", "EXPIRED", "CANCELLED"] })
      .notNull()
      .default("PENDING"),
    totalCents: integer("total_cents").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /** The QStash message that expires this hold, kept so that paying can cancel it. */
    expiryMessageId: text("expiry_message_id"),
  },
  (t) => [
    index("reservations_user_idx").on(t.userId, t.createdAt),
    index("reservations_pending_expiry_idx").on(t.expiresAt).where(sql`${t.status} = 'PENDING'`),
  ],
);

export const reservationSeats = pgTable(
  "reservation_seats",
  {
    reservationId: uuid("reservation_id")
      .notNull()
      .references(() => reservations.id, { onDelete: "cascade" }),
    seatId: uuid("seat_id")
      .notNull()
      .references(() => seats.id),
    sessionId: uuid("session_id").notNull(),
    claim: tstzrange("claim").notNull(),
  },
  (t) => [primaryKey({ columns: [t.reservationId, t.seatId] })],
);

export const sales = pgTable(
  "sales",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    reservationId: uuid("reservation_id")
      .notNull()
      .references(() => reservations.id),
    userId: text("user_id").notNull(),
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id),
    amountCents: integer("amount_cents").notNull(),
    paidAt: timestamp("paid_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("sales_reservation_idx").on(t.reservationId),
    index("sales_user_idx").on(t.userId, t.paidAt),
  ],
);

export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    responseBody: text("response_body").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);

export const outbox = pgTable(
  "outbox",
  {
    seq: bigserial("seq", { mode: "number" }).primaryKey(),
    id: uuid("id").notNull().defaultRandom(),
    type: text("type").notNull(),
    aggregateId: uuid("aggregate_id").notNull(),
    payload: jsonb("payload").notNull(),
    occurredAt: timestamp("occurred_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    publishedAt: timestamp("published_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("outbox_unpublished_idx").on(t.seq).where(sql`${t.publishedAt} IS NULL`),
    // The relay's per-reservation order check and the retention pruner.
    index("outbox_pending_aggregate_idx").on(t.aggregateId, t.seq).where(sql`${t.publishedAt} IS NULL`),
    index("outbox_published_at_idx").on(t.publishedAt).where(sql`${t.publishedAt} IS NOT NULL`),
  ],
);
