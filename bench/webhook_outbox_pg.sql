-- The webhook outbox a cell of scripts/bench left in its PostgreSQL database
-- (new for the cell), read after the service stopped, as one JSON object:
-- the messages written (by type), and per endpoint its deliveries by state
-- and its attempts (by outcome; a delivering attempt is kept on its
-- delivery). Correctness: `ok_events_without_message`
-- (a result answered ok whose change has no message) and
-- `messages_without_event` must be 0.
SELECT json_build_object(
    'messages', (SELECT count(*) FROM webhook_messages),
    'types', (SELECT json_object_agg(type, n)
                FROM (SELECT type, count(*) AS n FROM webhook_messages GROUP BY type) AS t),
    'ok_events', (SELECT count(*) FROM events
                   WHERE kind = 'result' AND answer_status = 'ok' AND NOT duplicate),
    'ok_events_without_message', (
        SELECT count(*) FROM events e
         WHERE e.kind = 'result' AND e.answer_status = 'ok' AND NOT e.duplicate
           AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.event_id = e.id)),
    'messages_without_event', (
        SELECT count(*) FROM webhook_messages m
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = m.event_id)),
    'deliveries', (
        SELECT json_object_agg(endpoint, states)
          FROM (SELECT endpoint, json_object_agg(state, n) AS states
                  FROM (SELECT endpoint, state, count(*) AS n
                          FROM webhook_deliveries GROUP BY endpoint, state) AS s
                 GROUP BY endpoint) AS e),
    'attempts', (
        SELECT json_object_agg(endpoint, outcomes)
          FROM (SELECT endpoint, json_object_agg(outcome, n) AS outcomes
                  FROM (SELECT endpoint, outcome, count(*) AS n
                          FROM (SELECT endpoint, outcome FROM webhook_attempts
                                UNION ALL
                                SELECT endpoint, 'delivered' FROM webhook_deliveries
                                 WHERE state = 'delivered' AND last_latency_ms IS NOT NULL) AS t
                         GROUP BY endpoint, outcome) AS s
                 GROUP BY endpoint) AS a));
