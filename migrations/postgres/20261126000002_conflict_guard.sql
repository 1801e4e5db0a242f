-- Raised inside a group's single write statement when a row it decided on
-- changed since it was read: the statement (and with it every write of the
-- group) is rolled back, and the group is decided again under locks.
CREATE FUNCTION freedompay_conflict() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a row changed since the group read it' USING ERRCODE = '40001';
END
$$;
