-- Delivery latency of a webhook latency cell of scripts/bench: the lines
-- `webhook-id arrival` that bench/webhook_receiver.py wrote (psql's standard
-- input: `psql -f bench/webhook_latency_pg.sql <ARRIVALS`) joined with
-- webhook_messages.created_at (the writing transaction's time): commit ->
-- first attempt received at the endpoint, in ms, as one JSON object.
-- `not_received`: messages the receiver never saw; `unknown_ids`: ids it
-- received that are not in the outbox (must be 0); `received_again`:
-- messages it received more than once.
CREATE TEMP TABLE arrivals (id TEXT, at DOUBLE PRECISION);
\copy arrivals FROM pstdin WITH (FORMAT text, DELIMITER ' ')
WITH first AS (
    SELECT id, min(at) AS at, count(*) AS n FROM arrivals GROUP BY id
), latency AS (
    SELECT (f.at - extract(epoch FROM m.created_at)) * 1000 AS ms
      FROM webhook_messages m JOIN first f ON f.id = m.id
)
SELECT json_build_object(
    'messages', (SELECT count(*) FROM webhook_messages),
    'received', (SELECT count(*) FROM latency),
    'not_received', (SELECT count(*) FROM webhook_messages m
                      WHERE NOT EXISTS (SELECT 1 FROM first f WHERE f.id = m.id)),
    'unknown_ids', (SELECT count(*) FROM first f
                     WHERE NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.id = f.id)),
    'received_again', (SELECT count(*) FROM first WHERE n > 1),
    'min_ms', (SELECT round(min(ms)::numeric, 2) FROM latency),
    'p50_ms', (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 2) FROM latency),
    'p99_ms', (SELECT round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 2) FROM latency),
    'max_ms', (SELECT round(max(ms)::numeric, 2) FROM latency));
