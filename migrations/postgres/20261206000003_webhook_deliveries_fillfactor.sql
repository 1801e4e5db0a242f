-- Room in each page of webhook_deliveries for the claim's new row version:
-- a claim changes only lease_owner, lease_until and updated_at (no indexed
-- column, and not the partial indexes' state), so with free space on the
-- page PostgreSQL makes it a heap-only update and adds no entries to the
-- table's three indexes. At the default fillfactor (100) inserts fill the
-- pages and every claim wrote three index entries. Applies to pages written
-- from now on.
ALTER TABLE webhook_deliveries SET (fillfactor = 70);
