-- no-transaction
-- Payments by order, on order_id alone. The index it replaces,
-- (order_id, merchant_id), still held merchant_id, so with scans disabled on
-- the write path (store::postgres::WRITER_SETTINGS) a lookup by
-- (merchant_id, payment_id) planned while the table looked empty could take
-- it as a full index scan filtered on merchant_id, and keep that plan as the
-- table grew. Now only the primary key holds payment_id or merchant_id (the
-- needs_refund index is partial), so the primary key is the lookup's only
-- index. Built CONCURRENTLY: callbacks keep writing while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_by_order_id ON payments (order_id);
