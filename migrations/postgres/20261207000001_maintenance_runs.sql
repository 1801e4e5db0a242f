-- maintenance_runs: one row per background job that runs on one instance at
-- a time, once a day (`retention`): lease_owner/lease_until, the instance
-- running it now; finished_at, the end of its last complete run; last_error,
-- why its last run stopped (NULL when it completed); expunged_through, the
-- last event id whose personal fields were looked at (README, "Keeping and
-- deleting data").
--
-- The event log itself is partitioned by month after these migrations, by
-- `migrate` (src/store/postgres/partitions.rs): an upgrade of a large table
-- needs steps that cannot run in a migration's transaction.
CREATE TABLE maintenance_runs (
    name              TEXT        PRIMARY KEY,
    lease_owner       TEXT        NULL,
    lease_until       TIMESTAMPTZ NULL,
    finished_at       TIMESTAMPTZ NULL,
    last_error        TEXT        NULL,
    expunged_through  BIGINT      NOT NULL DEFAULT 0
);
