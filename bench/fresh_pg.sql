-- The fresh database of scripts/bench (PostgreSQL): the service's schema
-- (applied by `freedompay-receiver migrate` before this), and one pending
-- order per pre-signed callback (B-:first ... B-:n, see bench/bodies.py; the
-- template gets 1 ... n, the long cell's copy the rest of its bodies' orders).
-- No payments, no events. The orders table is analysed, as autovacuum would
-- do after a bulk load; the empty tables are left as a new deployment has
-- them (never analysed).
INSERT INTO orders (merchant_id, order_id, amount, currency)
SELECT '545774', 'B-' || lpad(g::text, 7, '0'), 2500.5, 'KZT'
  FROM generate_series(:first, :n) AS g;
ANALYZE orders;
