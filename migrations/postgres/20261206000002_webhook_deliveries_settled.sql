-- The console's Webhooks page counts each endpoint's deliveries settled in
-- the last 24 hours and lists the dead ones, newest first. A settled
-- delivery's next_attempt_at is when it was settled (the dispatcher settles
-- delivered and dead ones with no further delay), so this index of settled
-- rows only, by state and that time, serves both: a range of each state for
-- the counts, the dead ones' newest first for the list. The write path inserts pending
-- deliveries, which it does not hold; it indexes only columns that settling
-- changes already (never one that a claim changes), so claims stay HOT.
CREATE INDEX webhook_deliveries_settled
    ON webhook_deliveries (state, next_attempt_at, endpoint)
    WHERE state <> 'pending';
