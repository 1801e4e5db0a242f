-- The month retention drops, in scripts/bench's pg_retention_drop cell
-- (PostgreSQL, on a copy of the grown database, partitioned): the partition
-- of the month before the one :keep_days ago, made as the service names its
-- partitions (`events_YYYY_MM`) with CREATE TABLE … PARTITION OF, and :rows
-- result events in it, spread over its first 28 days: copies of the grown
-- database's first :rows events (the same ~600-byte fields, ids from the
-- events' sequence), so the month is as large as a real one. No stored
-- decision names them. (scripts/bench then VACUUMs the log, as autovacuum
-- would have long before the month is old.)
SET TIME ZONE 'UTC';
SELECT date_trunc('month', now() - :keep_days * interval '1 day') - interval '1 month' AS old_month
\gset
SELECT format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
              'events_' || to_char(:'old_month'::timestamptz, 'YYYY_MM'),
              :'old_month'::timestamptz, :'old_month'::timestamptz + interval '1 month')
\gexec

INSERT INTO events (received_at, merchant_id, kind, order_id, payment_id, fields, answer_status,
                    answer_description, duplicate, signature_variant, key_label)
SELECT :'old_month'::timestamptz + (e.id - 1) * (interval '28 days' / :rows), e.merchant_id, e.kind,
       e.order_id, e.payment_id, e.fields, e.answer_status, e.answer_description, e.duplicate,
       e.signature_variant, e.key_label
  FROM events AS e
 WHERE e.id <= :rows
 ORDER BY e.id;
