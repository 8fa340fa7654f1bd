-- Group commit for payments (booking/pay-batch.ts): the payments that arrive while one is in
-- flight are made together, in one statement and one transaction. Each payment is
-- pay_reservation itself, in a subtransaction of its own, so its semantics are exactly those of a
-- payment alone: its reservation's row lock first, liveness judged on the clock after it, the
-- claims made to last forever only for a live hold (the exclusion constraint refuses that when
-- someone else claimed a seat after expiry: RESERVATION_EXPIRED, this payment rolled back alone),
-- one sale however often it is paid (a second payment of the same reservation in the batch finds
-- it CONFIRMED by the first and answers its sale). Payments are made in reservation-id order, so
-- two batches lock their rows in one order and do not deadlock each other.

-- p_payments is a JSON array of {ord, reservation_id, user_id (null: anyone's)}; one row per
-- payment, o_ord its `ord`:
--   answered  o_answer is pay_reservation's answer ({"error": code} or {"paidNow", "reservation"})
--   failed    anything else went wrong with this payment alone (o_failure: SQLSTATE and message)
CREATE OR REPLACE FUNCTION pay_reservations(p_payments jsonb)
RETURNS TABLE (o_ord integer, o_outcome text, o_answer json, o_failure text)
LANGUAGE plpgsql AS $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT * FROM jsonb_to_recordset(p_payments) AS x(ord integer, reservation_id uuid, user_id text)
    ORDER BY x.reservation_id, x.ord
  LOOP
    o_ord := p.ord;
    o_answer := NULL;
    o_failure := NULL;
    BEGIN
      o_answer := pay_reservation(p.reservation_id, p.user_id);
      o_outcome := 'answered';
    EXCEPTION
      WHEN exclusion_violation THEN
        o_outcome := 'answered';
        o_answer := json_build_object('error', 'RESERVATION_EXPIRED');
      WHEN OTHERS THEN
        o_outcome := 'failed';
        o_failure := SQLSTATE || ' ' || SQLERRM;
    END;
    RETURN NEXT;
  END LOOP;
END
$$;
