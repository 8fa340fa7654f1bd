-- A cheaper batch of payments (booking/pay-statement.ts). pay_reservations (0010) ran
-- pay_reservation once per payment, each in a subtransaction of its own, and built the answer
-- and the payment.confirmed event as JSON in SQL (reservation_row: one lookup per seat). Measured
-- on a scratch database, 4 connections, 16 payments a batch: ~400-600 us of PostgreSQL CPU per
-- payment, of which the row lock, the claims, the reservation and the sale are a small part.
--
-- pay_holds does for the whole batch, set-wise, only what the database must decide: the
-- reservations' row locks (in id order, so two batches do not deadlock each other), liveness on
-- the clock once every lock is ours, ownership, the claims made to last forever (the exclusion
-- constraint refuses that when someone else claimed a seat after its hold expired), the
-- reservation confirmed, the sale. It answers one row per payment with the facts the service
-- builds the answer and the event from; the service writes the events (and the idempotency keys)
-- in the same transaction, in a second statement. One subtransaction covers the batch's writes:
-- when any of them fails (a seat claimed after expiry, mostly), they are made again one
-- reservation at a time, each in a subtransaction of its own, and only the one that failed fails.

-- p_payments is a JSON array of {reservation_id, user_id (null: anyone's), key_scope, key,
-- key_hash (null: no Idempotency-Key)}. One row per payment, o_ord its position (1-based):
--   o_key       null, or key_in_use / key_reused / replayed (o_stored: the remembered answer):
--               the payment was not attempted
--   o_status    the reservation's status after this statement (null: no such reservation)
--   o_paid_now  this payment made the sale (of several payments of one reservation, the first
--               that passed its owner and key checks)
--   o_refusal   the reservation's payment failed on its own: 'expired' (a seat was claimed by
--               someone else after the hold's end) or the SQLSTATE and message
--   the rest    the reservation (times as ISO-8601 UTC text) and, once CONFIRMED, its seats (in
--               seat-id order) and its sale
CREATE OR REPLACE FUNCTION pay_holds(p_payments json)
RETURNS TABLE (o_ord integer, o_key text, o_stored text, o_status text, o_paid_now boolean,
  o_refusal text, o_session_id text, o_user_id text, o_total_cents integer, o_expires_at text,
  o_created_at text, o_seat_ids text[], o_sale_id text, o_sale_cents integer, o_paid_at text)
LANGUAGE plpgsql AS $$
DECLARE
  v_ids uuid[];
  v_owners text[];
  v_scopes text[];
  v_keys text[];
  v_hashes text[];
  v_key_outcomes text[] := '{}';
  v_stored text[] := '{}';
  v_hash text;
  v_body text;
  v_now timestamptz;
  v_pay uuid[];
  v_payers integer[];
  v_refused uuid[] := '{}';
  v_refusals text[] := '{}';
  v_id uuid;
BEGIN
  SELECT array_agg(x.reservation_id ORDER BY x.ord), array_agg(x.user_id ORDER BY x.ord),
         array_agg(x.key_scope ORDER BY x.ord), array_agg(x.key ORDER BY x.ord),
         array_agg(x.key_hash ORDER BY x.ord)
    INTO v_ids, v_owners, v_scopes, v_keys, v_hashes
    FROM ROWS FROM (json_to_recordset(p_payments)
      AS (reservation_id uuid, user_id text, key_scope text, key text, key_hash text))
      WITH ORDINALITY AS x(reservation_id, user_id, key_scope, key, key_hash, ord);

  -- Idempotency keys first: a key in use, or used before, means no attempt at all.
  FOR i IN 1 .. coalesce(cardinality(v_ids), 0) LOOP
    CONTINUE WHEN v_keys[i] IS NULL;
    IF NOT pg_try_advisory_xact_lock(hashtextextended('idempotency:' || v_scopes[i] || ':' || v_keys[i], 0)) THEN
      v_key_outcomes[i] := 'key_in_use';
    ELSE
      SELECT k.request_hash, k.response_body INTO v_hash, v_body
        FROM idempotency_keys k WHERE k.scope = v_scopes[i] AND k.key = v_keys[i];
      IF FOUND THEN
        v_key_outcomes[i] := CASE WHEN v_hash = v_hashes[i] THEN 'replayed' ELSE 'key_reused' END;
        v_stored[i] := CASE WHEN v_hash = v_hashes[i] THEN v_body END;
      END IF;
    END IF;
  END LOOP;

  PERFORM 1 FROM reservations r WHERE r.id = ANY(v_ids) ORDER BY r.id FOR UPDATE;
  -- Judged on the clock now that every row is ours, not at the start of the transaction.
  v_now := clock_timestamp();

  SELECT array_agg(p.id ORDER BY p.id), array_agg(p.ord ORDER BY p.id) INTO v_pay, v_payers FROM (
    SELECT DISTINCT ON (r.id) r.id, q.ord::integer AS ord
    FROM reservations r
      JOIN unnest(v_ids, v_owners) WITH ORDINALITY AS q(id, owner, ord) ON q.id = r.id
    WHERE r.id = ANY(v_ids) AND r.status = 'PENDING' AND r.expires_at > v_now
      AND (q.owner IS NULL OR q.owner = r.user_id) AND v_key_outcomes[q.ord] IS NULL
    ORDER BY r.id, q.ord) p;

  IF v_pay IS NOT NULL THEN
    BEGIN
      UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity') WHERE reservation_id = ANY(v_pay);
      UPDATE reservations SET status = 'CONFIRMED', updated_at = now() WHERE id = ANY(v_pay);
      INSERT INTO sales (reservation_id, user_id, session_id, amount_cents)
        SELECT r.id, r.user_id, r.session_id, r.total_cents FROM reservations r WHERE r.id = ANY(v_pay);
    EXCEPTION WHEN OTHERS THEN
      FOREACH v_id IN ARRAY v_pay LOOP
        BEGIN
          UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity') WHERE reservation_id = v_id;
          UPDATE reservations SET status = 'CONFIRMED', updated_at = now() WHERE id = v_id;
          INSERT INTO sales (reservation_id, user_id, session_id, amount_cents)
            SELECT r.id, r.user_id, r.session_id, r.total_cents FROM reservations r WHERE r.id = v_id;
        EXCEPTION
          WHEN exclusion_violation THEN
            v_refused := v_refused || v_id;
            v_refusals := v_refusals || 'expired'::text;
          WHEN OTHERS THEN
            v_refused := v_refused || v_id;
            v_refusals := v_refusals || (SQLSTATE || ' ' || SQLERRM);
        END;
      END LOOP;
    END;
  END IF;

  RETURN QUERY
    SELECT q.ord::integer, v_key_outcomes[q.ord], v_stored[q.ord], r.status,
      r.status = 'CONFIRMED' AND coalesce(q.ord = ANY(v_payers), false),
      v_refusals[array_position(v_refused, r.id)],
      r.session_id::text, r.user_id, r.total_cents,
      to_char(r.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      CASE WHEN r.status = 'CONFIRMED' THEN
        ARRAY(SELECT rs.seat_id::text FROM reservation_seats rs WHERE rs.reservation_id = r.id ORDER BY rs.seat_id)
      END,
      s.id::text, s.amount_cents,
      to_char(s.paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    FROM unnest(v_ids) WITH ORDINALITY AS q(id, ord)
      LEFT JOIN reservations r ON r.id = q.id
      LEFT JOIN sales s ON s.reservation_id = r.id AND r.status = 'CONFIRMED'
    ORDER BY q.ord;
END
$$;
--> statement-breakpoint

-- Replaced by pay_holds; reservation_row stays (the reads answer with it).
DROP FUNCTION IF EXISTS pay_reservations(jsonb);
--> statement-breakpoint
DROP FUNCTION IF EXISTS pay_reservation(uuid, text);
