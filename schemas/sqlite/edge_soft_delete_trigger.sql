-- edgesync: deletes = "soft". A DELETE by the application keeps the row and
-- sets its es_deleted marker instead; that UPDATE is captured (and stamped) by
-- the update trigger, and RAISE(IGNORE) then skips the delete of this row
-- without failing the statement.
CREATE TRIGGER {{trg_delete}} BEFORE DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE {{table}} SET es_deleted = 1 WHERE {{old_key_match}} AND es_deleted = 0;
  SELECT RAISE(IGNORE);
END;
