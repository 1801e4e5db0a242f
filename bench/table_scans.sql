-- How the callback path's three tables have been read so far in this
-- database (scripts/bench takes it before and after a cell; the difference
-- is the cell's), and how often autovacuum processed them, as one JSON
-- object: {table: {seq_scan, seq_tup_read, idx_scan, idx_tup_fetch,
-- autovacuum_count, autoanalyze_count, n_live_tup}}.
SELECT json_object_agg(relname, json_build_object(
           'seq_scan', seq_scan, 'seq_tup_read', seq_tup_read,
           'idx_scan', coalesce(idx_scan, 0), 'idx_tup_fetch', coalesce(idx_tup_fetch, 0),
           'autovacuum_count', autovacuum_count, 'autoanalyze_count', autoanalyze_count,
           'n_live_tup', n_live_tup))
  FROM pg_stat_user_tables
 WHERE relname IN ('payments', 'events', 'callback_decisions', 'orders');
