-- edgesync: change capture on an edge table whose changes are pushed
-- (direction = "both" or "push").
--
-- Every trigger fires only while es_ctl.applying = 0. edgesync sets applying = 1
-- inside its own apply transactions and back to 0 before they commit, so no
-- other connection ever sees it set, and a row edgesync wrote is never captured
-- as a local change (no echo loop).
--
-- A "tick" below is the hybrid logical clock step:
--   seq = seq + 1,
--   hlc = MAX((now_ms + clock_skew_ms) << 16, hlc + 1)
-- SQLite allows one writer at a time, so the counter in es_ctl is a
-- commit-safe local sequence.

-- Before an INSERT: remember the conflict base (es_cver) of the row an
-- INSERT OR REPLACE is about to replace, or of a row deleted earlier whose
-- delete has not been pushed yet, so the new row keeps it and a
-- delete-then-reinsert reaches the central as the update it is. (The values
-- of a replaced row are not kept in es_base: that would cost every plain
-- INSERT a statement. An upsert written INSERT ... ON CONFLICT DO UPDATE goes
-- through the update trigger below and keeps them.)
CREATE TRIGGER {{trg_stash}} BEFORE INSERT ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE es_ctl SET stash = COALESCE(
    (SELECT es_cver FROM {{table}} WHERE {{new_key_match}}),
    (SELECT t.es_cver FROM es_tombstones AS t WHERE t.tbl = {{tbl}} AND t.key = {{new_key_json}}));
END;
;;
-- After an INSERT: tick, stamp the row with the new sequence and clock, give
-- it the stashed base, and drop any pending tombstone for its key (the
-- re-insert supersedes the delete). The stamp sets only es_ver, es_hlc and
-- es_cver, which the update trigger below does not watch, so it runs no
-- second trigger program. A row inserted already marked deleted is revived
-- by the last statement, which the update trigger captures like any update.
CREATE TRIGGER {{trg_insert}} AFTER INSERT ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  UPDATE {{table}}
     SET (es_ver, es_hlc, es_cver) = (SELECT seq, hlc, stash FROM es_ctl)
   WHERE {{new_key_match}};
  DELETE FROM es_tombstones WHERE tbl = {{tbl}} AND key = {{new_key_json}};
  UPDATE {{table}} SET es_deleted = 0 WHERE {{new_key_match}} AND NEW.es_deleted IS NOT 0;
END;
;;
-- After an UPDATE by the application that keeps the key. It watches every
-- column but edgesync's stamps (es_ver, es_hlc, es_cver), so the stamping
-- UPDATEs of these triggers do not run it at all; "NEW.es_ver IS OLD.es_ver"
-- also keeps it silent should a write set es_ver along with other columns.
-- The first local change of a clean row keeps the row as it was synced in
-- es_base (the conflict base); later changes keep that first base.
CREATE TRIGGER {{trg_update}} AFTER UPDATE OF {{update_columns}} ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0 AND NEW.es_ver IS OLD.es_ver AND {{key_unchanged}}
BEGIN
  INSERT OR IGNORE INTO es_base (tbl, key, cver, row)
  SELECT {{tbl}}, {{old_key_json}}, OLD.es_cver, {{old_row_json}}
   WHERE OLD.es_cver IS NOT NULL
     AND OLD.es_ver <= COALESCE((SELECT s.push_wm FROM es_state AS s WHERE s.tbl = {{tbl}}), 0);
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  UPDATE {{table}}
     SET (es_ver, es_hlc) = (SELECT seq, hlc FROM es_ctl)
   WHERE {{new_key_match}};
END;
;;
-- After an UPDATE by the application that changes the key (a trigger of its
-- own, on the key columns only, so the common update does not carry this
-- program): the old key gets a tombstone (with its own sequence, before the
-- row's) so the central deletes it; the row under its new key takes the base
-- of a pending tombstone for that key, if any, else none.
CREATE TRIGGER {{trg_update_key}} AFTER UPDATE OF {{key_columns}} ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0 AND NEW.es_ver IS OLD.es_ver AND NOT ({{key_unchanged}})
BEGIN
  INSERT OR IGNORE INTO es_base (tbl, key, cver, row)
  SELECT {{tbl}}, {{old_key_json}}, OLD.es_cver, {{old_row_json}}
   WHERE OLD.es_cver IS NOT NULL
     AND OLD.es_ver <= COALESCE((SELECT s.push_wm FROM es_state AS s WHERE s.tbl = {{tbl}}), 0);
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  INSERT OR REPLACE INTO es_tombstones (tbl, key, es_ver, es_hlc, es_cver)
  SELECT {{tbl}}, {{old_key_json}}, seq, hlc, OLD.es_cver FROM es_ctl;
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  UPDATE {{table}}
     SET (es_ver, es_hlc) = (SELECT seq, hlc FROM es_ctl),
         es_cver = (SELECT t.es_cver FROM es_tombstones AS t
                     WHERE t.tbl = {{tbl}} AND t.key = {{new_key_json}})
   WHERE {{new_key_match}};
  DELETE FROM es_tombstones WHERE tbl = {{tbl}} AND key = {{new_key_json}};
END;
