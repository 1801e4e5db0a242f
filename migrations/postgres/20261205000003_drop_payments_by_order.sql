-- no-transaction
-- The (order_id, merchant_id) index, replaced by payments_by_order_id (see
-- the previous migration); dropped CONCURRENTLY, without blocking writes.
DROP INDEX CONCURRENTLY IF EXISTS payments_by_order;
