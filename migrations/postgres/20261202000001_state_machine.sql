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
ALTER TABLE events ADD COLUMN conflict boolean NOT NULL DEFAULT false;
ALTER TABLE events ADD COLUMN flag text NULL;
ALTER TABLE callback_decisions ADD COLUMN fingerprint text NULL;
ALTER TABLE callback_decisions ADD COLUMN repeats integer NOT NULL DEFAULT 0;
-- Payments already rejected before this version get the confirming status
-- query that rejections now schedule (task key 'confirm', due now), so that
-- one FreedomPay completed anyway (a retry with pg_can_reject=0) is found.
INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key)
    SELECT merchant_id, 'payment_status', payment_id, 'confirm' FROM payments WHERE status = 'rejected'
    ON CONFLICT DO NOTHING;

-- The optimistic group path stores the fingerprint with each decision it
-- claims: the write function gains one array.
DROP FUNCTION freedompay_write_group(text, text[], text[], text[], text[], text[], text[], text[],
    boolean[], text[], text[], text[], text[], numeric[], text[], text[], boolean[], boolean[], text[],
    text[], text[], boolean[], numeric[], text[], text[], text[], text[], text[], text[], text[], text[],
    text[], text[], text[], text[], text[], integer[]);

-- Every write of one merchant's group; returns the new event ids in order.
-- Takes the per-subject advisory locks of the locked paths first (sorted, so
-- no deadlock), then writes, raising freedompay_conflict() when a row is not
-- as read: an update must find the version it read (p_version / o_version),
-- an insert must find no row, a row read but not written must still carry
-- its version (g_version; NULL: still absent), and a decision must be new.
CREATE FUNCTION freedompay_write_group(
    merchant text, subjects text[],
    e_kind text[], e_order text[], e_payment text[], e_fields text[], e_status text[],
    e_description text[], e_duplicate boolean[], e_variant text[], e_key text[],
    p_id text[], p_order text[], p_amount numeric[], p_currency text[], p_status text[],
    p_captured boolean[], p_testing boolean[], p_card text[], p_failure_code text[],
    p_failure_description text[], p_needs_refund boolean[], p_refunded numeric[], p_version text[],
    o_id text[], o_status text[], o_paid text[], o_version text[],
    g_table text[], g_id text[], g_version text[],
    d_kind text[], d_subject text[], d_discriminator text[], d_status text[],
    d_description text[], d_event integer[], d_fingerprint text[])
RETURNS bigint[]
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    ids bigint[] := '{}';
    subject text;
    current text;
    changed integer;
    i integer;
BEGIN
    FOR subject IN SELECT s FROM unnest(subjects) AS s ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(subject, 0));
    END LOOP;
    -- Ids first, in order, so that decisions can name their events.
    SELECT coalesce(array_agg(nextval('events_id_seq') ORDER BY n), '{}') INTO ids
      FROM generate_subscripts(e_kind, 1) AS n;
    INSERT INTO events (id, merchant_id, kind, order_id, payment_id, fields, answer_status,
                        answer_description, duplicate, signature_variant, key_label)
    SELECT ids[g], merchant, e_kind[g], e_order[g], e_payment[g], e_fields[g]::jsonb, e_status[g],
           e_description[g], e_duplicate[g], e_variant[g], e_key[g]
      FROM generate_subscripts(e_kind, 1) AS g;
    PERFORM pg_notify('freedompay_events', id::text) FROM unnest(ids) AS id;
    -- New payments in one statement; none may exist by now.
    INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, captured,
        testing_mode, card_mask, failure_code, failure_description, needs_refund, refunded_amount)
    SELECT merchant, p_id[g], p_order[g], p_amount[g], p_currency[g], p_status[g], p_captured[g],
           p_testing[g], p_card[g], p_failure_code[g], p_failure_description[g], p_needs_refund[g],
           p_refunded[g]
      FROM generate_subscripts(p_id, 1) AS g WHERE p_version[g] IS NULL
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed <> (SELECT count(*) FROM unnest(p_version) AS v WHERE v IS NULL) THEN
        PERFORM freedompay_conflict();
    END IF;
    -- Payments read before: each must still be at the version read.
    FOR i IN 1 .. coalesce(array_length(p_id, 1), 0) LOOP
        CONTINUE WHEN p_version[i] IS NULL;
        UPDATE payments SET order_id = p_order[i], amount = p_amount[i],
            currency = p_currency[i], status = p_status[i], captured = p_captured[i],
            testing_mode = p_testing[i], card_mask = p_card[i],
            failure_code = p_failure_code[i], failure_description = p_failure_description[i],
            needs_refund = p_needs_refund[i], refunded_amount = p_refunded[i],
            updated_at = now()
         WHERE merchant_id = merchant AND payment_id = p_id[i] AND xmin::text = p_version[i];
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed <> 1 THEN PERFORM freedompay_conflict(); END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(o_id, 1), 0) LOOP
        UPDATE orders SET status = o_status[i], paid_payment_id = o_paid[i], updated_at = now()
         WHERE merchant_id = merchant AND order_id = o_id[i] AND xmin::text = o_version[i];
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed <> 1 THEN PERFORM freedompay_conflict(); END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(g_id, 1), 0) LOOP
        IF g_table[i] = 'payment' THEN
            SELECT xmin::text INTO current FROM payments
             WHERE merchant_id = merchant AND payment_id = g_id[i] FOR SHARE;
        ELSE
            SELECT xmin::text INTO current FROM orders
             WHERE merchant_id = merchant AND order_id = g_id[i] FOR SHARE;
        END IF;
        IF NOT FOUND THEN current := NULL; END IF;
        IF current IS DISTINCT FROM g_version[i] THEN PERFORM freedompay_conflict(); END IF;
    END LOOP;
    INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator,
                                    answer_status, answer_description, event_id, fingerprint)
    SELECT merchant, d_kind[g], d_subject[g], d_discriminator[g], d_status[g], d_description[g],
           ids[d_event[g]], d_fingerprint[g]
      FROM generate_subscripts(d_kind, 1) AS g
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed <> coalesce(array_length(d_kind, 1), 0) THEN PERFORM freedompay_conflict(); END IF;
    RETURN ids;
END
$$;
