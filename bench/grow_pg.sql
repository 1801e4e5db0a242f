-- The grown database of scripts/bench (PostgreSQL): on top of the fresh one,
-- :rows earlier payments as the service leaves them, each with its paid
-- order, its result event (the ~600-byte fields of a real callback, as JSON
-- pairs) and its stored decision, received over the previous weeks. Then
-- ANALYZE, so the planner knows the tables' sizes.
--
-- On the partitioned event log (`migrate`, the default; a new database's
-- partitions start with the current month) the months these events fall in
-- get their partitions first, named as the service names them, as if the
-- log had grown month by month; a plain log (`migrate --plain-events`) is
-- left plain.
SET TIME ZONE 'UTC';
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
              'events_' || to_char(m, 'YYYY_MM'), m, m + interval '1 month')
  FROM generate_series(date_trunc('month', now() - interval '60 days'),
                       date_trunc('month', now() - interval '60 days' + :rows * interval '2 seconds'),
                       interval '1 month') AS m
 WHERE (SELECT relkind FROM pg_class WHERE oid = 'events'::regclass) = 'p'
\gexec

INSERT INTO orders (merchant_id, order_id, amount, currency, status, paid_payment_id,
                    created_at, updated_at)
SELECT '545774', 'OLD-' || lpad(g::text, 7, '0'), 2500.5, 'KZT', 'paid', (100000000 + g)::text,
       now() - interval '60 days' + g * interval '2 seconds',
       now() - interval '60 days' + g * interval '2 seconds'
  FROM generate_series(1, :rows) AS g;

INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, captured,
                      testing_mode, card_mask, created_at, updated_at)
SELECT '545774', (100000000 + g)::text, 'OLD-' || lpad(g::text, 7, '0'), 2500.5, 'KZT',
       'succeeded', true, false, '5483-18XX-XXXX-0293',
       now() - interval '60 days' + g * interval '2 seconds',
       now() - interval '60 days' + g * interval '2 seconds'
  FROM generate_series(1, :rows) AS g;

INSERT INTO events (id, received_at, merchant_id, kind, order_id, payment_id, fields,
                    answer_status, answer_description, duplicate, signature_variant, key_label)
SELECT g, now() - interval '60 days' + g * interval '2 seconds', '545774', 'result',
       'OLD-' || lpad(g::text, 7, '0'), (100000000 + g)::text,
       jsonb_build_array(
           jsonb_build_array('pg_order_id', 'OLD-' || lpad(g::text, 7, '0')),
           jsonb_build_array('pg_payment_id', (100000000 + g)::text),
           jsonb_build_array('pg_amount', '2500.5'),
           jsonb_build_array('pg_currency', 'KZT'),
           jsonb_build_array('pg_net_amount', '2425.99'),
           jsonb_build_array('pg_ps_amount', '2500.5'),
           jsonb_build_array('pg_ps_full_amount', '2500.5'),
           jsonb_build_array('pg_ps_currency', 'KZT'),
           jsonb_build_array('pg_description', 'Заказ в интернет-магазине'),
           jsonb_build_array('pg_result', '1'),
           jsonb_build_array('pg_payment_date', '2026-10-01 12:00:00'),
           jsonb_build_array('pg_can_reject', '1'),
           jsonb_build_array('pg_user_phone', '77001234567'),
           jsonb_build_array('pg_user_contact_email', 'payer@example.kz'),
           jsonb_build_array('pg_testing_mode', '0'),
           jsonb_build_array('pg_captured', '1'),
           jsonb_build_array('pg_card_pan', '5483-18XX-XXXX-0293'),
           jsonb_build_array('pg_card_exp', '03/29'),
           jsonb_build_array('pg_card_owner', 'IVAN IVANOV'),
           jsonb_build_array('pg_card_brand', 'MC'),
           jsonb_build_array('pg_payment_method', 'bankcard'),
           jsonb_build_array('pg_salt', md5(g::text)),
           jsonb_build_array('pg_sig', md5('sig' || g))),
       'ok', 'Payment accepted', false, 'canonical', 'current'
  FROM generate_series(1, :rows) AS g;
SELECT setval('events_id_seq', :rows);

INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, answer_status,
                                answer_description, event_id, created_at)
SELECT '545774', 'result', (100000000 + g)::text, '1', 'ok', 'Payment accepted', g,
       now() - interval '60 days' + g * interval '2 seconds'
  FROM generate_series(1, :rows) AS g;

ANALYZE;
