-- freedompay-receiver schema (PostgreSQL). Read by the merchant's internal
-- services; the same table and column names exist on SQLite.

-- Orders: written by internal services before the payer is sent to pay.
CREATE TABLE orders (
    merchant_id      TEXT        NOT NULL,
    order_id         TEXT        NOT NULL,
    amount           NUMERIC     NOT NULL CHECK (amount >= 0),
    currency         TEXT        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'paid', 'failed', 'refunded', 'partially_refunded', 'expired', 'cancelled')),
    expires_at       TIMESTAMPTZ NULL,
    paid_payment_id  TEXT        NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, order_id)
);

-- Payments: one row per FreedomPay pg_payment_id.
CREATE TABLE payments (
    merchant_id          TEXT        NOT NULL,
    payment_id           TEXT        NOT NULL,
    order_id             TEXT        NOT NULL,
    amount               NUMERIC     NOT NULL,
    currency             TEXT        NOT NULL,
    status               TEXT        NOT NULL CHECK (status IN
                             ('pending', 'succeeded', 'failed', 'rejected', 'refunded')),
    captured             BOOLEAN     NULL,
    testing_mode         BOOLEAN     NOT NULL DEFAULT false,
    card_mask            TEXT        NULL,
    failure_code         TEXT        NULL,
    failure_description  TEXT        NULL,
    needs_refund         BOOLEAN     NOT NULL DEFAULT false,
    refunded_amount      NUMERIC     NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, payment_id)
);
CREATE INDEX payments_by_order ON payments (merchant_id, order_id);
CREATE INDEX payments_needing_refund ON payments (merchant_id) WHERE needs_refund;

-- Payouts: one row per payout order id.
CREATE TABLE payouts (
    merchant_id  TEXT        NOT NULL,
    order_id     TEXT        NOT NULL,
    payment_id   TEXT        NULL,
    status       TEXT        NOT NULL CHECK (status IN ('process', 'success', 'error')),
    amount       NUMERIC     NULL,
    card_mask    TEXT        NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, order_id)
);

-- Events: append-only log of every authenticated callback delivery.
CREATE TABLE events (
    id                  BIGSERIAL   PRIMARY KEY,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    merchant_id         TEXT        NOT NULL,
    kind                TEXT        NOT NULL,
    order_id            TEXT        NULL,
    payment_id          TEXT        NULL,
    fields              JSONB       NOT NULL,
    answer_status       TEXT        NULL,
    answer_description  TEXT        NULL,
    duplicate           BOOLEAN     NOT NULL DEFAULT false,
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
    event_id            BIGINT      NULL REFERENCES events (id),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, kind, subject_id, discriminator)
);
