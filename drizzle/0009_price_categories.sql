-- Price categories: a session prices its seats by category (key, name, price), each category
-- covering rows or seat ranges. Each seat carries its category and that category's price, both
-- fixed once the session exists, so a hold's total is the sum of its seats' prices without a join.
-- Existing sessions get one category, "standard", at their price.
CREATE TABLE IF NOT EXISTS "price_categories" (
  "session_id" uuid NOT NULL REFERENCES "sessions"("id") ON DELETE CASCADE,
  "key" text NOT NULL,
  "name" text NOT NULL,
  "price_cents" integer NOT NULL CHECK ("price_cents" >= 0),
  "position" integer NOT NULL,
  PRIMARY KEY ("session_id", "key")
);
--> statement-breakpoint
INSERT INTO "price_categories" ("session_id", "key", "name", "price_cents", "position")
  SELECT "id", 'standard', 'Standard', "price_cents", 1 FROM "sessions"
  ON CONFLICT DO NOTHING;
--> statement-breakpoint
ALTER TABLE "seats" ADD COLUMN IF NOT EXISTS "category" text;
--> statement-breakpoint
ALTER TABLE "seats" ADD COLUMN IF NOT EXISTS "price_cents" integer;
--> statement-breakpoint
UPDATE "seats" s SET "category" = 'standard', "price_cents" = se."price_cents"
  FROM "sessions" se WHERE se."id" = s."session_id" AND s."category" IS NULL;
--> statement-breakpoint
ALTER TABLE "seats" ALTER COLUMN "category" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "seats" ALTER COLUMN "price_cents" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_category_fk"
  FOREIGN KEY ("session_id", "category") REFERENCES "price_categories"("session_id", "key");
