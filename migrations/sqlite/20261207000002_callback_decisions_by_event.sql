-- The stored decisions that name an event: retention deletes them with their
-- event, and SQLite's foreign-key check of each deleted event looks here
-- (without the index, every deleted event read the whole table).
CREATE INDEX callback_decisions_by_event ON callback_decisions (event_id);
