-- One row that /readyz rewrites while the write path is failing: a commit
-- of about what a group of callbacks writes (256 KiB of random padding, which
-- no compression shrinks), proving the database takes writes again (a full
-- disk, a read-only server). Nothing else reads it.
CREATE TABLE readiness_probe (
    id smallint PRIMARY KEY CHECK (id = 1),
    probed_at timestamptz NOT NULL,
    padding bytea NOT NULL
);
