-- One row that /readyz rewrites while the write path is failing: a commit
-- of about what a group of callbacks writes (256 KiB of random padding, which
-- no compression shrinks), proving the database takes writes again (a full
-- disk). Nothing else reads it.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL,
    padding BLOB NOT NULL
);
