-- The reference durable write of one callback, as pgbench runs it: insert a
-- ~600-byte event and mark its order paid, in one transaction of four round
-- trips (BEGIN, INSERT, UPDATE, END), synchronous_commit on.
\set id random(1, 100000)
BEGIN;
INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, answer_status, answer_description, duplicate)
VALUES ('545774', 'result', 'R-' || :id, :id, '[["pg_order_id","R-1"],["pg_payment_id","1234567890"],["pg_amount","2500.50"],["pg_currency","KZT"],["pg_net_amount","2425.49"],["pg_ps_amount","2500.50"],["pg_ps_full_amount","2500.50"],["pg_ps_currency","KZT"],["pg_description","Order in the web shop"],["pg_result","1"],["pg_payment_date","2026-11-25 12:00:00"],["pg_can_reject","1"],["pg_user_phone","77001234567"],["pg_user_contact_email","payer@example.kz"],["pg_testing_mode","0"],["pg_captured","1"],["pg_card_pan","5483-18XX-XXXX-0293"],["pg_salt","a7Rk2LmQ9xZpT3vW"],["pg_sig","0123456789abcdef0123456789abcdef"]]'::jsonb, 'ok', 'Payment accepted', false);
UPDATE orders SET status = 'paid', updated_at = now() WHERE merchant_id = '545774' AND order_id = 'R-' || :id;
END;
