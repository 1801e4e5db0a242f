-- freedompay-receiver schema (SQLite). Read by the merchant's internal
-- services; the same table and column names exist on PostgreSQL. Money is
-- canonical decimal text ('7000', '12.5'), times are UTC ISO-8601 text,
-- booleans 0/1, and events.fields is JSON text.

-- Orders: written by internal services before the payer is sent to pay.
CREATE TABLE orders (
    merchant_id      TEXT        NOT NULL,
    order_id         TEXT        NOT NULL,
    amount           TEXT        NOT NULL,
    currency         TEXT        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'paid', 'failed', 'refunded', 'partially_refunded', 'expired', 'cancelled')),
    expires_at       TEXT        NULL,
    paid_payment_id  TEXT        NULL,
    created_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (merchant_id, order_id)
);

-- Payments: one row per FreedomPay pg_payment_id.
CREATE TABLE payments (
    merchant_id          TEXT        NOT NULL,
    payment_id           TEXT        NOT NULL,
    order_id             TEXT        NOT NULL,
    amount               TEXT        NOT NULL,
    currency             TEXT        NOT NULL,
    status               TEXT        NOT NULL CHECK (status IN
                             ('pending', 'succeeded', 'failed', 'rejected', 'refunded')),
    captured             BOOLEAN     NULL,
    testing_mode         BOOLEAN     NOT NULL DEFAULT 0,
    card_mask            TEXT        NULL,
    failure_code         TEXT        NULL,
    failure_description  TEXT        NULL,
    needs_refund         BOOLEAN     NOT NULL DEFAULT 0,
    refunded_amount      TEXT        NOT NULL DEFAULT '0',
    created_at           TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at           TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (merchant_id, payment_id)
);
CREATE INDEX payments_by_order ON payments (merchant_id, order_id);
CREATE INDEX payments_needing_refund ON payments (merchant_id) WHERE needs_refund = 1;

-- Payouts: one row per payout order id.
CREATE TABLE payouts (
    merchant_id  TEXT        NOT NULL,
    order_id     TEXT        NOT NULL,
    payment_id   TEXT        NULL,
    status       TEXT        NOT NULL CHECK (status IN ('process', 'success', 'error')),
    amount       TEXT        NULL,
    card_mask    TEXT        NULL,
    created_at   TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (merchant_id, order_id)
);

-- Events: append-only log of every authenticated callback delivery.
CREATE TABLE events (
    id                  INTEGER     PRIMARY KEY AUTOINCREMENT,
    received_at         TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    merchant_id         TEXT        NOT NULL,
    kind                TEXT        NOT NULL,
    order_id            TEXT        NULL,
    payment_id          TEXT        NULL,
    fields              TEXT        NOT NULL,
    answer_status       TEXT        NULL,
    answer_description  TEXT        NULL,
    duplicate           BOOLEAN     NOT NULL DEFAULT 0,
    signature_variant   TEXT        NULL,
    key_label           TEXT        NULL
);
CREATE INDEX events_by_payment ON events (merchant_id, payment_id);
CREATE INDEX events_by_order ON events (merchant_id, order_id);

-- The first decision per callback identity, replayed to FreedomPay's retries.
CREATE TABLE callback_decisions (
    merchant_id         TEXT        NOT NULL,
    kind                TEXT        NOT NULL,
    subject_id          TEXT        NOT NULL,
    discriminator       TEXT        NOT NULL,
    answer_status       TEXT        NULL,
    answer_description  TEXT        NULL,
    event_id            INTEGER     NULL REFERENCES events (id),
    created_at          TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (merchant_id, kind, subject_id, discriminator)
);
