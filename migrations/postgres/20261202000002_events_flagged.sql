-- no-transaction
-- Events an operator must look at (events.flag, events.conflict), by time.
-- Built CONCURRENTLY, outside a transaction (the first line tells sqlx), so
-- that deploying it does not block inserts into a large events table; alone
-- in its file, because a multi-statement string runs as one transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_flagged ON events (received_at) WHERE flag IS NOT NULL OR conflict;
