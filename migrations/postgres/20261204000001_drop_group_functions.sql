-- The group functions of the optimistic write path are gone: groups are now
-- read, decided and written by the service's own statements, which look up
-- every row by its primary key (src/store/callbacks/path.rs).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.proname IN ('freedompay_read_group', 'freedompay_write_group', 'freedompay_conflict')
          AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;
