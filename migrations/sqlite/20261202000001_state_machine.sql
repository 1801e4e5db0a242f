-- The callback state machine under retries, reordering and contradictions.
--
-- events.conflict: a delivery with an already-claimed key whose signed content
--   differs from the first (callback_decisions.fingerprint).
-- events.flag: why an operator must look at this event, NULL when nothing is
--   wrong: 'unparseable: …' (authenticated, but its fields could not be
--   read), 'over_refund', 'payout_contradiction', 'bad_order_row: …',
--   'early_notice' (a refund or capture before its payment; answered 503).
-- callback_decisions.fingerprint: SHA-256 (hex) of the first delivery's signed
--   fields without pg_salt and pg_sig; NULL (claims made before this
--   migration, reconciled facts) matches any content.
-- callback_decisions.repeats: further deliveries of a redirect, counted
--   instead of logged (a redirect is recorded once per payment and outcome).
ALTER TABLE events ADD COLUMN conflict BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN flag TEXT NULL;
ALTER TABLE callback_decisions ADD COLUMN fingerprint TEXT NULL;
ALTER TABLE callback_decisions ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_flagged ON events (received_at) WHERE flag IS NOT NULL OR conflict;

-- Payments already rejected before this version get the confirming status
-- query that rejections now schedule (task key 'confirm', due now), so that
-- one FreedomPay completed anyway (a retry with pg_can_reject=0) is found.
INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key)
    SELECT merchant_id, 'payment_status', payment_id, 'confirm' FROM payments WHERE status = 'rejected'
    ON CONFLICT DO NOTHING;
