-- SQLite twin of the PostgreSQL migration (its comment says why): the
-- settled deliveries by when they were settled, for the console's
-- Webhooks page.
CREATE INDEX webhook_deliveries_settled
    ON webhook_deliveries (state, next_attempt_at, endpoint)
    WHERE state <> 'pending';
