-- What one cell of scripts/bench left in its PostgreSQL database, as one
-- JSON object: the result events received since :since (epoch seconds,
-- taken before the cell started), counted per second from the first of
-- them over :seconds seconds, and the correctness counts.
WITH cell AS (
    SELECT id, received_at, merchant_id, order_id, payment_id, answer_status, duplicate
      FROM events
     WHERE kind = 'result' AND received_at >= to_timestamp(:since)
), origin AS (
    SELECT min(received_at) AS t0 FROM cell
), per_second AS (
    SELECT s, count(c.id) AS n
      FROM generate_series(0, :seconds - 1) AS s
      LEFT JOIN cell c
        ON floor(extract(epoch FROM c.received_at - (SELECT t0 FROM origin)))::int = s
     GROUP BY s
)
SELECT json_build_object(
    'series', (SELECT json_agg(n ORDER BY s) FROM per_second),
    'result_events', (SELECT count(*) FROM cell),
    'ok_events', (SELECT count(*) FROM cell WHERE answer_status = 'ok'),
    'duplicate_events', (SELECT count(*) FROM cell WHERE duplicate),
    'payments_with_several_events', (
        SELECT count(*) FROM (SELECT 1 FROM cell GROUP BY payment_id HAVING count(*) > 1) AS d),
    'ok_orders_not_paid', (
        SELECT count(*) FROM cell c
          JOIN orders o ON o.merchant_id = c.merchant_id AND o.order_id = c.order_id
         WHERE c.answer_status = 'ok' AND o.status <> 'paid'),
    'orders_paid', (SELECT count(*) FROM orders WHERE order_id LIKE 'B-%' AND status = 'paid'),
    -- How the receiver read the tables during the cell (the database is
    -- new for the cell): [scans, index entries read] per index used, and
    -- [scans, rows read] per table scanned sequentially. A lookup that walks
    -- far more rows than it finds shows here.
    'index_scans_and_rows', (
        SELECT json_object_agg(relname || '.' || indexrelname, json_build_array(idx_scan, idx_tup_read))
          FROM pg_stat_user_indexes WHERE idx_scan > 0),
    'seq_scans_and_rows', (
        SELECT json_object_agg(relname, json_build_array(seq_scan, seq_tup_read))
          FROM pg_stat_user_tables WHERE seq_scan > 0));
