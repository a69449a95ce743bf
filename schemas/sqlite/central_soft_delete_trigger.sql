-- edgesync: deletes = "soft". A DELETE by a central application keeps the row
-- with its es_deleted marker set (stamped by the update trigger), so pulls
-- deliver the delete; RAISE(IGNORE) skips the row's removal.
CREATE TRIGGER {{trg_delete}} BEFORE DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE {{table}} SET es_deleted = 1 WHERE {{old_key_match}} AND es_deleted = 0;
  SELECT RAISE(IGNORE);
END;
