-- The pgbench reference ceiling's data: the service's own tables (created by
-- `freedompay-receiver migrate` on this database) with 100,000 orders.
INSERT INTO orders (merchant_id, order_id, amount, currency)
SELECT '545774', 'R-' || g, 2500.50, 'KZT' FROM generate_series(1, 100000) AS g
ON CONFLICT DO NOTHING;
