-- How the callback path's tables have been read so far in this database
-- (scripts/bench takes it before and after a cell; the difference is the
-- cell's), and how often autovacuum processed them, as one JSON object:
-- {table: {seq_scan, seq_tup_read, idx_scan, idx_tup_fetch,
-- autovacuum_count, autoanalyze_count, n_live_tup}}. A partitioned event
-- log's partitions are summed under `event_partitions` (`events` itself
-- is then only their parent, which autovacuum never visits).
SELECT json_object_agg(relname, json_build_object(
           'seq_scan', seq_scan, 'seq_tup_read', seq_tup_read,
           'idx_scan', idx_scan, 'idx_tup_fetch', idx_tup_fetch,
           'autovacuum_count', autovacuum_count, 'autoanalyze_count', autoanalyze_count,
           'n_live_tup', n_live_tup))
  FROM (SELECT relname::text AS relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan,
               coalesce(idx_tup_fetch, 0) AS idx_tup_fetch, autovacuum_count, autoanalyze_count, n_live_tup
          FROM pg_stat_user_tables
         WHERE relname IN ('payments', 'events', 'callback_decisions', 'orders')
        UNION ALL
        SELECT 'event_partitions', sum(seq_scan), sum(seq_tup_read), sum(coalesce(idx_scan, 0)),
               sum(coalesce(idx_tup_fetch, 0)), sum(autovacuum_count), sum(autoanalyze_count), sum(n_live_tup)
          FROM pg_stat_user_tables AS t JOIN pg_inherits AS i ON i.inhrelid = t.relid
         WHERE i.inhparent = 'events'::regclass
        HAVING count(*) > 0) AS tables;
