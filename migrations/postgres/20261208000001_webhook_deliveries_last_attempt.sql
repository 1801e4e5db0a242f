-- The attempt that delivers is kept on its delivery, beside last_status and
-- delivered_at: its latency and the first KiB of the answer. Most
-- deliveries succeed at their first attempt, and a row of webhook_attempts
-- for each was a third of the dispatcher's writes per message.
-- webhook_attempts keeps every attempt that did not deliver, and a
-- delivering attempt when its delivery is replayed (copied there first).
-- Deliveries settled before this migration keep their attempt rows; their
-- last_latency_ms stays NULL, which tells the two apart.
ALTER TABLE webhook_deliveries ADD COLUMN last_latency_ms INTEGER NULL;
ALTER TABLE webhook_deliveries ADD COLUMN last_excerpt TEXT NULL;
