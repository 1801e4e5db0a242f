-- SQLite twin of the PostgreSQL migration (its comments say what each table
-- and column is): times as UTC ISO-8601 text, the body as JSON text.
CREATE TABLE webhook_messages (
    id            TEXT        PRIMARY KEY,
    merchant_id   TEXT        NOT NULL,
    type          TEXT        NOT NULL,
    event_id      INTEGER     NOT NULL,
    ordering_key  TEXT        NOT NULL,
    position      INTEGER     NOT NULL,
    body          TEXT        NOT NULL,
    created_at    TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX webhook_messages_by_event ON webhook_messages (event_id);

CREATE TABLE webhook_deliveries (
    message_id       TEXT        NOT NULL,
    endpoint         TEXT        NOT NULL,
    ordering_key     TEXT        NOT NULL,
    event_id         INTEGER     NOT NULL,
    position         INTEGER     NOT NULL,
    state            TEXT        NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    lease_owner      TEXT        NULL,
    lease_until      TEXT        NULL,
    last_status      INTEGER     NULL,
    last_error       TEXT        NULL,
    delivered_at     TEXT        NULL,
    replayed_by      TEXT        NULL,
    replayed_at      TEXT        NULL,
    created_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (message_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_queue
    ON webhook_deliveries (endpoint, ordering_key, event_id, position)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id            INTEGER     PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT        NOT NULL,
    endpoint      TEXT        NOT NULL,
    attempted_at  TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    outcome       TEXT        NOT NULL CHECK (outcome IN ('delivered', 'gone', 'failed')),
    status        INTEGER     NULL,
    latency_ms    INTEGER     NOT NULL,
    excerpt       TEXT        NULL,
    error         TEXT        NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (message_id, endpoint);
