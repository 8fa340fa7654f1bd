-- Group commit: the holds that arrive while a claim is in flight are claimed together, in one
-- statement and one transaction (booking/claim-batch.ts). Each hold runs in a subtransaction of
-- its own, so it stays all-or-nothing and independent: one that meets a taken seat (the
-- exclusion constraint refuses its claims) or a seat another claimant has try-locked rolls back
-- alone and the others commit. The database decides only what it must (who gets the seats); the
-- service already knows the seats, their session and price, and builds the answer itself.

-- Advisory try-locks on seats, in ascending order, stopping at the first one taken (a loser that
-- went on would hold later seats until its rollback and could turn away the buyer who holds the
-- first). Answers that seat, or an empty array when every seat is ours. Inside a subtransaction
-- that rolls back, its locks go with it.
CREATE OR REPLACE FUNCTION try_lock_seats(p_seat_ids uuid[]) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  v_seat uuid;
BEGIN
  FOR v_seat IN SELECT s FROM unnest(p_seat_ids) AS s ORDER BY s LOOP
    IF NOT pg_try_advisory_xact_lock(hashtextextended(v_seat::text, 0)) THEN
      RETURN ARRAY[v_seat::text];
    END IF;
  END LOOP;
  RETURN '{}';
END
$$;
--> statement-breakpoint

-- Claims a batch of holds, one subtransaction each, and answers one row per hold:
--   created     its reservation, claims, outbox event and idempotency key are written;
--               o_created_at / o_expires_at are the times the database gave it
--   taken       a seat has a live claim (o_seat_ids: those seats)
--   locked      a seat is try-locked by another claimant (o_seat_ids: that seat)
--   replayed    its idempotency key was used before with the same request (o_stored: the answer)
--   key_in_use  its idempotency key is held by a transaction still running
--   key_reused  its idempotency key was used before with another request
--   failed      anything else went wrong with this hold alone (o_stored: SQLSTATE and message)
-- p_holds is a JSON array of {reservation_id, user_id, session_id, total_cents, ttl_seconds,
-- seat_ids (distinct, ascending), try_locks, event, key_scope, key, key_hash, answer}: `event` is the
-- reservation.created payload and `answer` the idempotent response, both without the times that
-- only the database knows, which are added here.
CREATE OR REPLACE FUNCTION claim_holds(p_holds json)
RETURNS TABLE (o_reservation_id uuid, o_outcome text, o_seat_ids text[], o_stored text, o_created_at text, o_expires_at text)
LANGUAGE plpgsql AS $$
DECLARE
  h record;
  v_expires timestamptz;
  v_expires_text text;
  v_now_text text := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  v_hash text;
  v_body text;
BEGIN
  FOR h IN SELECT * FROM json_to_recordset(p_holds) AS x(
      reservation_id uuid, user_id text, session_id uuid, total_cents integer, ttl_seconds integer,
      seat_ids uuid[], try_locks boolean, event jsonb, key_scope text, key text, key_hash text, answer jsonb)
  LOOP
    o_reservation_id := h.reservation_id;
    o_outcome := NULL;
    o_seat_ids := NULL;
    o_stored := NULL;
    o_created_at := NULL;
    o_expires_at := NULL;
    v_expires := now() + make_interval(secs => h.ttl_seconds);
    v_expires_text := to_char(v_expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    BEGIN
      IF h.key IS NOT NULL THEN
        IF NOT pg_try_advisory_xact_lock(hashtextextended('idempotency:' || h.key_scope || ':' || h.key, 0)) THEN
          o_outcome := 'key_in_use';
        ELSE
          SELECT k.request_hash, k.response_body INTO v_hash, v_body
            FROM idempotency_keys k WHERE k.scope = h.key_scope AND k.key = h.key;
          IF FOUND THEN
            o_outcome := CASE WHEN v_hash = h.key_hash THEN 'replayed' ELSE 'key_reused' END;
            o_stored := CASE WHEN v_hash = h.key_hash THEN v_body END;
          END IF;
        END IF;
      END IF;
      IF o_outcome IS NULL THEN
        IF h.try_locks THEN
          o_seat_ids := try_lock_seats(h.seat_ids);
          -- A custom SQLSTATE, to roll back this hold's subtransaction (and its try-locks) alone.
          IF cardinality(o_seat_ids) > 0 THEN RAISE EXCEPTION USING ERRCODE = 'CLM01'; END IF;
          o_seat_ids := NULL;
        END IF;
        INSERT INTO reservations (id, session_id, user_id, total_cents, expires_at)
          VALUES (h.reservation_id, h.session_id, h.user_id, h.total_cents, v_expires);
        -- Claims in seat-id order, like every writer, so concurrent claims meet in one order.
        INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
          SELECT h.reservation_id, seat, h.session_id, tstzrange(now(), v_expires)
          FROM unnest(h.seat_ids) AS seat ORDER BY seat;
        INSERT INTO outbox (type, aggregate_id, payload)
          VALUES ('reservation.created', h.reservation_id, h.event || jsonb_build_object('expiresAt', v_expires_text));
        IF h.key IS NOT NULL THEN
          INSERT INTO idempotency_keys (scope, key, request_hash, response_body)
            VALUES (h.key_scope, h.key, h.key_hash,
              (h.answer || jsonb_build_object('expiresAt', v_expires_text, 'createdAt', v_now_text))::text);
        END IF;
        o_outcome := 'created';
        o_created_at := v_now_text;
        o_expires_at := v_expires_text;
      END IF;
    EXCEPTION
      WHEN exclusion_violation THEN
        o_outcome := 'taken';
      WHEN SQLSTATE 'CLM01' THEN
        o_outcome := 'locked';
      WHEN OTHERS THEN
        o_outcome := 'failed';
        o_stored := SQLSTATE || ' ' || SQLERRM;
    END;
    IF o_outcome = 'taken' THEN
      -- Written as an overlap, the test is an index condition of the constraint's GiST index.
      SELECT array_agg(rs.seat_id::text ORDER BY rs.seat_id) INTO o_seat_ids FROM reservation_seats rs
        WHERE rs.seat_id = ANY(h.seat_ids) AND rs.claim && tstzrange(now(), 'infinity');
      o_seat_ids := coalesce(o_seat_ids, h.seat_ids::text[]);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
--> statement-breakpoint

-- Replaced by claim_holds.
DROP FUNCTION IF EXISTS claim_seats(uuid, text, uuid[], integer);
--> statement-breakpoint

-- No reader looks an event up by its id (the relay reads by seq, consumers deduplicate by the
-- AMQP messageId); the index only cost every claim, payment and cancellation a B-tree insert.
DROP INDEX IF EXISTS outbox_id_idx;
--> statement-breakpoint

-- No reader needs claims by session: the seat map joins each seat's claims through the exclusion
-- constraint's GiST index (seat_id, claim), and the reconciler reads the whole table. One B-tree
-- insert less per claimed seat.
DROP INDEX IF EXISTS reservation_seats_session_idx;
