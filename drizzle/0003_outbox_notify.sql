-- Wakes the outbox relays: one notification per inserting statement, delivered at commit (so a
-- relay is never woken for rows it cannot see yet) and folded into one per transaction.
-- The channel name is OUTBOX_CHANNEL in src/events/relay.ts. Relays also poll, so a lost
-- notification only delays an event, never loses it.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox_events', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
