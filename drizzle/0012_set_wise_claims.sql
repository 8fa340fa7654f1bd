-- Holds of a batch claimed set-wise (the hold path of issue 12). claim_holds (0008) made each hold
-- of a batch in a subtransaction of its own: three single-row INSERTs and a subtransaction (with
-- its own transaction id) per hold. A batch is now first tried as one statement in one
-- subtransaction: every reservation, every claim (in seat-id order across the whole batch, so
-- concurrent batches still meet their seats in one order) and every reservation.created event. When
-- any hold of it cannot be made that way (a seat taken, by another batch or by another hold of this
-- one, or anything else) that subtransaction is rolled back and the batch is made one hold at a time,
-- as before, so each hold still succeeds or fails alone (the batch's try-locks, taken in that
-- subtransaction, are released with it). A batch with an Idempotency-Key goes one hold at a time: a
-- key is looked up, and its answer stored, per hold. A hold's times are those the one-by-one path
-- gives it (the transaction's now()).

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
  v_together boolean := false;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM json_to_recordset(p_holds) AS x(key text) WHERE x.key IS NOT NULL) THEN
    BEGIN
      -- Every try-lock the batch's holds ask for, in seat order; one taken elsewhere: one by one.
      IF cardinality(try_lock_seats(ARRAY(
        SELECT seat FROM json_to_recordset(p_holds) AS x(seat_ids uuid[], try_locks boolean),
          unnest(x.seat_ids) AS seat
        WHERE coalesce(x.try_locks, false)))) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CLM01';
      END IF;
      WITH holds AS MATERIALIZED (
        SELECT x.*, e.n, now() + make_interval(secs => x.ttl_seconds) AS expires
        FROM json_array_elements(p_holds) WITH ORDINALITY AS e(value, n),
          json_to_record(e.value) AS x(reservation_id uuid, user_id text, session_id uuid,
            total_cents integer, ttl_seconds integer, seat_ids uuid[], event jsonb)
      ), made AS (
        INSERT INTO reservations (id, session_id, user_id, total_cents, expires_at)
        SELECT reservation_id, session_id, user_id, total_cents, expires FROM holds ORDER BY n
      ), claimed AS (
        INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
        SELECT held.reservation_id, seat, held.session_id, tstzrange(now(), held.expires)
        FROM holds AS held, unnest(held.seat_ids) AS seat ORDER BY seat
      )
      INSERT INTO outbox (type, aggregate_id, payload)
      SELECT 'reservation.created', reservation_id, event || jsonb_build_object('expiresAt',
        to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      FROM holds ORDER BY n;
      v_together := true;
    EXCEPTION WHEN OTHERS THEN
      v_together := false;
    END;
    IF v_together THEN
      RETURN QUERY
        SELECT x.reservation_id, 'created'::text, NULL::text[], NULL::text, v_now_text,
          to_char((now() + make_interval(secs => x.ttl_seconds)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        FROM json_array_elements(p_holds) WITH ORDINALITY AS e(value, n),
          json_to_record(e.value) AS x(reservation_id uuid, ttl_seconds integer)
        ORDER BY e.n;
      RETURN;
    END IF;
  END IF;
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
