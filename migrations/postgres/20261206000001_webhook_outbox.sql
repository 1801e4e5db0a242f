-- The outbox of messages for the merchant's own services (README, "Telling
-- your services"): each message is written in the transaction of the change
-- it reports, with one delivery per endpoint that wants it, so nothing is
-- sent that was not committed and nothing committed is left unsent.
--
-- webhook_messages: one row per message; id is the Standard Webhooks
--   `webhook-id` (msg_ and a UUIDv7), the same on every retry and endpoint.
--   ordering_key names its subject (payment:<merchant>:<payment id>,
--   payout:<merchant>:<order id>, or event:<id> for a flag without one);
--   (event_id, position) is its place in commit order within that subject.
--   body is the JSON text exactly as sent (TEXT, not JSONB, which would
--   reorder its keys): the same bytes on every retry and for every endpoint.
-- webhook_deliveries: one row per message and endpoint. state: pending
--   (to be sent), delivered (a 2xx), dead (every attempt failed, or the
--   endpoint answered 410 Gone); lease_owner/lease_until: the instance
--   sending it now. replayed_by/replayed_at: who last sent it again
--   (`webhooks replay`), and when.
-- webhook_attempts: one row per HTTP attempt, with the first 1 KiB of the
--   answer, for `webhooks show`.
CREATE TABLE webhook_messages (
    id            TEXT        PRIMARY KEY,
    merchant_id   TEXT        NOT NULL,
    type          TEXT        NOT NULL,
    event_id      BIGINT      NOT NULL,
    ordering_key  TEXT        NOT NULL,
    position      INTEGER     NOT NULL,
    body          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_by_event ON webhook_messages (event_id);

CREATE TABLE webhook_deliveries (
    message_id       TEXT        NOT NULL,
    endpoint         TEXT        NOT NULL,
    ordering_key     TEXT        NOT NULL,
    event_id         BIGINT      NOT NULL,
    position         INTEGER     NOT NULL,
    state            TEXT        NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner      TEXT        NULL,
    lease_until      TIMESTAMPTZ NULL,
    last_status      INTEGER     NULL,
    last_error       TEXT        NULL,
    delivered_at     TIMESTAMPTZ NULL,
    replayed_by      TEXT        NULL,
    replayed_at      TIMESTAMPTZ NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_queue
    ON webhook_deliveries (endpoint, ordering_key, event_id, position)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id            BIGSERIAL   PRIMARY KEY,
    message_id    TEXT        NOT NULL,
    endpoint      TEXT        NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome       TEXT        NOT NULL CHECK (outcome IN ('delivered', 'gone', 'failed')),
    status        INTEGER     NULL,
    latency_ms    INTEGER     NOT NULL,
    excerpt       TEXT        NULL,
    error         TEXT        NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (message_id, endpoint);
