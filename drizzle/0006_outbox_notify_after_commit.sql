-- Relays are woken by the application after its commit (events/outbox.ts, notifyRelays), no longer
-- by a trigger inside the writing transaction: a transaction that has notified holds a
-- database-wide lock from its commit until its WAL is flushed, so every claim, payment and
-- cancellation waited for the previous one's flush instead of sharing it (pgbench, claim_seats,
-- 10 clients: about a third more claims per second without the trigger). Relays still poll, so
-- rows written by anything else are published at the next poll.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
--> statement-breakpoint
DROP FUNCTION IF EXISTS outbox_notify();
