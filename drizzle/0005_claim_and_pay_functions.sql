-- The hot paths as single statements: a hold's claim and a payment each take one round trip to
-- the database instead of one per step. Both run in the caller's transaction when there is one
-- (idempotent requests, advisory locks), or as a transaction of their own. The exclusion
-- constraint still decides: a concurrent claim that slips past the availability check fails the
-- insert with exclusion_violation, which the caller turns into SEAT_UNAVAILABLE.

-- A reservation as the API shows it (the columns of booking/reservations.ts's ReservationRow).
-- A PENDING hold whose time is up reads EXPIRED, whether or not the sweeper has run.
CREATE OR REPLACE FUNCTION reservation_row(r reservations) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', r.id,
    'session_id', r.session_id,
    'user_id', r.user_id,
    'status', CASE WHEN r.status = 'PENDING' AND r.expires_at <= now() THEN 'EXPIRED' ELSE r.status END,
    'total_cents', r.total_cents,
    'expires_at', to_char(r.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'sale_id', sa.id,
    'sale_amount_cents', sa.amount_cents,
    'sale_paid_at', to_char(sa.paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    -- Each seat fetched by its key (OFFSET 0 keeps the subquery from being flattened into a join):
    -- a cached generic plan that misjudges claims per reservation would otherwise hash-join
    -- the whole seats table for two seats.
    'seats', (
      SELECT json_agg(json_build_object('id', st.id, 'row', st."row", 'number', st."number", 'label', st.label)
                      ORDER BY st.position)
      FROM reservation_seats rs,
        LATERAL (SELECT * FROM seats WHERE seats.id = rs.seat_id OFFSET 0) AS st
      WHERE rs.reservation_id = r.id))
  FROM (SELECT 1) AS one LEFT JOIN sales sa ON sa.reservation_id = r.id
$$;
--> statement-breakpoint

-- Holds p_seat_ids (distinct) for p_user_id as reservation p_reservation_id, all or none.
-- Answers {"error": code, ...} or {"reservation": <reservation_row>}.
CREATE OR REPLACE FUNCTION claim_seats(
  p_reservation_id uuid, p_user_id text, p_seat_ids uuid[], p_ttl_seconds integer
) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
  v_found uuid[];
  v_sessions uuid[];
  v_taken uuid[];
  v_missing uuid[];
  v_session uuid;
  v_total integer;
  v_reservation reservations;
BEGIN
  SELECT array_agg(s.id ORDER BY s.position),
         array_agg(DISTINCT s.session_id),
         -- A claim blocks the seat if it reaches past now. Written as an overlap, the test is an
         -- index condition on the exclusion constraint's GiST index (seat_id, claim); as
         -- upper(claim) > now() it is a filter over every claim the seat ever had, and the
         -- lookup slows down as the table grows.
         array_agg(s.id ORDER BY s.position) FILTER (WHERE EXISTS (
           SELECT 1 FROM reservation_seats rs
           WHERE rs.seat_id = s.id AND rs.claim && tstzrange(now(), 'infinity')))
    INTO v_found, v_sessions, v_taken
    FROM seats s WHERE s.id = ANY(p_seat_ids);

  IF coalesce(cardinality(v_found), 0) < cardinality(p_seat_ids) THEN
    SELECT array_agg(requested.id ORDER BY requested.ordinal) INTO v_missing
      FROM unnest(p_seat_ids) WITH ORDINALITY AS requested(id, ordinal)
      WHERE requested.id <> ALL(coalesce(v_found, '{}'));
    RETURN json_build_object('error', 'SEAT_NOT_FOUND', 'seatIds', v_missing);
  END IF;
  IF cardinality(v_sessions) > 1 THEN
    RETURN json_build_object('error', 'SEATS_FROM_MULTIPLE_SESSIONS', 'sessionIds', v_sessions);
  END IF;
  IF v_taken IS NOT NULL THEN
    RETURN json_build_object('error', 'SEAT_UNAVAILABLE', 'seatIds', v_taken);
  END IF;

  v_session := v_sessions[1];
  SELECT price_cents * cardinality(v_found) INTO v_total FROM sessions WHERE id = v_session;
  INSERT INTO reservations (id, session_id, user_id, total_cents, expires_at)
    VALUES (p_reservation_id, v_session, p_user_id, v_total, now() + make_interval(secs => p_ttl_seconds))
    RETURNING * INTO v_reservation;
  -- Claims in seat-id order, like every writer, so concurrent claims meet in one order.
  INSERT INTO reservation_seats (reservation_id, seat_id, session_id, claim)
    SELECT p_reservation_id, seat.id, v_session, tstzrange(now(), v_reservation.expires_at)
    FROM unnest(v_found) AS seat(id) ORDER BY seat.id;
  INSERT INTO outbox (type, aggregate_id, payload) VALUES ('reservation.created', p_reservation_id, json_build_object(
    'reservationId', p_reservation_id,
    'sessionId', v_session,
    'userId', p_user_id,
    'seatIds', v_found,
    'totalPrice', (v_total / 100.0)::float8,
    'expiresAt', to_char(v_reservation.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
  RETURN json_build_object('reservation', reservation_row(v_reservation));
END
$$;
--> statement-breakpoint

-- Pays reservation p_reservation_id (owned by p_user_id when that is not null). Payments of one
-- reservation take turns on its row lock: the first confirms, the others find it CONFIRMED.
-- Answers {"error": code} or {"paidNow": bool, "reservation": <reservation_row>}.
CREATE OR REPLACE FUNCTION pay_reservation(p_reservation_id uuid, p_user_id text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
  v_reservation reservations;
  v_live boolean;
  v_seat_ids uuid[];
  v_sale sales;
BEGIN
  SELECT * INTO v_reservation FROM reservations WHERE id = p_reservation_id FOR UPDATE;
  IF NOT FOUND THEN RETURN json_build_object('error', 'RESERVATION_NOT_FOUND'); END IF;
  -- Judged on the clock now that the row is ours, not at the start of the transaction.
  v_live := v_reservation.expires_at > clock_timestamp();
  IF p_user_id IS NOT NULL AND p_user_id <> v_reservation.user_id THEN
    RETURN json_build_object('error', 'RESERVATION_NOT_OWNED');
  END IF;
  IF v_reservation.status = 'CANCELLED' THEN RETURN json_build_object('error', 'RESERVATION_CANCELLED'); END IF;
  IF v_reservation.status = 'CONFIRMED' THEN
    RETURN json_build_object('paidNow', false, 'reservation', reservation_row(v_reservation));
  END IF;
  IF v_reservation.status = 'EXPIRED' OR NOT v_live THEN
    RETURN json_build_object('error', 'RESERVATION_EXPIRED');
  END IF;

  -- The claims now last forever; the constraint refuses this if anyone else claimed a seat meanwhile.
  UPDATE reservation_seats SET claim = tstzrange(lower(claim), 'infinity')
    WHERE reservation_id = p_reservation_id;
  UPDATE reservations SET status = 'CONFIRMED', updated_at = now()
    WHERE id = p_reservation_id RETURNING * INTO v_reservation;
  INSERT INTO sales (reservation_id, user_id, session_id, amount_cents)
    VALUES (p_reservation_id, v_reservation.user_id, v_reservation.session_id, v_reservation.total_cents)
    RETURNING * INTO v_sale;
  SELECT array_agg(seat_id ORDER BY seat_id) INTO v_seat_ids FROM reservation_seats WHERE reservation_id = p_reservation_id;
  INSERT INTO outbox (type, aggregate_id, payload) VALUES ('payment.confirmed', p_reservation_id, json_build_object(
    'reservationId', p_reservation_id,
    'saleId', v_sale.id,
    'sessionId', v_reservation.session_id,
    'userId', v_reservation.user_id,
    'seatIds', v_seat_ids,
    'amount', (v_reservation.total_cents / 100.0)::float8,
    'paidAt', to_char(v_sale.paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
  RETURN json_build_object('paidNow', true, 'reservation', reservation_row(v_reservation));
END
$$;
