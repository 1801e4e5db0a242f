-- maintenance_runs: one row per background job that runs on one instance at
-- a time, once a day (`retention`): lease_owner/lease_until, the instance
-- running it now; finished_at, the end of its last complete run; last_error,
-- why its last run stopped (NULL when it completed); expunged_through, the
-- last event id whose personal fields were looked at (README, "Keeping and
-- deleting data").
CREATE TABLE maintenance_runs (
    name              TEXT        PRIMARY KEY,
    lease_owner       TEXT        NULL,
    lease_until       TEXT        NULL,
    finished_at       TEXT        NULL,
    last_error        TEXT        NULL,
    expunged_through  INTEGER     NOT NULL DEFAULT 0
);
