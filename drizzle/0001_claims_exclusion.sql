-- The no-double-sale guarantee. A seat's claims (holds and sales) may never overlap in time:
-- a hold claims [createdAt, expiresAt), a sale [createdAt, infinity). An expired hold's range is
-- already in the past, so it blocks nobody, whether or not the sweeper has run yet.
CREATE EXTENSION IF NOT EXISTS btree_gist;
--> statement-breakpoint
ALTER TABLE "reservation_seats"
  ADD CONSTRAINT "reservation_seats_no_overlapping_claims"
  EXCLUDE USING gist ("seat_id" WITH =, "claim" WITH &&);
--> statement-breakpoint
ALTER TABLE "reservation_seats"
  ADD CONSTRAINT "reservation_seats_claim_bounded" CHECK (NOT isempty("claim") AND NOT lower_inf("claim"));
--> statement-breakpoint
ALTER TABLE "reservations"
  ADD CONSTRAINT "reservations_status_check" CHECK ("status" IN ('PENDING', 'CONFIRMED', 'EXPIRED', 'CANCELLED'));
