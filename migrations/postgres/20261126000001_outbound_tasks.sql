-- Work the service does towards FreedomPay: status queries for callbacks that
-- never came (reconciliation) and refunds. Read by internal services to see
-- what is pending and how each refund ended.
--
-- task: payment_status | order_status | payout_status | refund
-- subject_id: the payment id (payment_status, refund), the merchant's order id
--   (order_status) or the payout order id (payout_status).
-- task_key: '' for status tasks, 'auto' for the automatic refund of a payment
--   flagged needs_refund (so there is at most one), the request id for a refund
--   asked for by an operator.
-- state: open (still to do), done, failed (gave up; an operator must look).
-- stage (refunds): new (nothing sent), sending (a request may have left; its
--   outcome is not known), requested (FreedomPay accepted it; waiting for a
--   signed status that shows the money returned).
-- request_id (refunds): fixed before the first call and reused on every retry.
-- confirm_total (refunds): the refunded total that confirms this refund.
-- lease_until, lease_owner: the instance working the task, and until when.
CREATE TABLE outbound_tasks (
    id               BIGSERIAL   PRIMARY KEY,
    merchant_id      TEXT        NOT NULL,
    task             TEXT        NOT NULL CHECK (task IN
                         ('payment_status', 'order_status', 'payout_status', 'refund')),
    subject_id       TEXT        NOT NULL,
    task_key         TEXT        NOT NULL DEFAULT '',
    state            TEXT        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'failed')),
    stage            TEXT        NULL CHECK (stage IN ('new', 'sending', 'requested')),
    method           TEXT        NULL CHECK (method IN ('revoke', 'superapp', 'v5', 'card_api')),
    request_id       TEXT        NULL,
    amount           NUMERIC     NULL,
    confirm_total    NUMERIC     NULL,
    refund_id        TEXT        NULL,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until      TIMESTAMPTZ NULL,
    lease_owner      TEXT        NULL,
    last_error       TEXT        NULL,
    outcome          TEXT        NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, task, subject_id, task_key)
);
CREATE INDEX outbound_tasks_due ON outbound_tasks (next_attempt_at) WHERE state = 'open';

-- Reconciliation finds payments seen at check but without a result, and
-- payouts without a final status, through these small partial indexes.
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'pending';
CREATE INDEX payouts_in_process ON payouts (updated_at) WHERE status = 'process';
