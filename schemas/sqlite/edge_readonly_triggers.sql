-- edgesync: direction = "pull". The table is a read-only copy of the central
-- one on this edge: an application write would never reach the central and
-- would be overwritten silently, so it is refused with a message naming the
-- table. edgesync's own writes (applying = 1) pass.
CREATE TRIGGER {{trg_ro_insert}} BEFORE INSERT ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  SELECT RAISE(ABORT, {{message}});
END;
;;
CREATE TRIGGER {{trg_ro_update}} BEFORE UPDATE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  SELECT RAISE(ABORT, {{message}});
END;
;;
CREATE TRIGGER {{trg_ro_delete}} BEFORE DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  SELECT RAISE(ABORT, {{message}});
END;
