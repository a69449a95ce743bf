-- edgesync: version stamping of writes made by central applications.
--
-- They fire only while es_ctl.applying = 0: when edgesync applies a push it
-- sets applying = 1 and writes every es_ column itself (version, clock,
-- origin node and sequence) in the same transaction.
-- Each write takes the next central version from es_ctl.seq (one writer at a
-- time, so versions are assigned in commit order) and a clock tick:
--   hlc = MAX((now_ms + clock_skew_ms) << 16, hlc + 1)
-- An UPDATE also ticks past the row's own stamp (OLD.es_hlc + 1): a central
-- write made after seeing an edge's write sorts after it under
-- last-write-wins, however far ahead that edge's wall clock was. (es_ctl.hlc
-- already follows every pushed stamp; this keeps it true row by row.)

-- After an INSERT: stamp the row as a central write and drop any tombstone of
-- its key (a re-insert supersedes the delete).
CREATE TRIGGER {{trg_insert}} AFTER INSERT ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  UPDATE {{table}}
     SET es_ver = (SELECT seq FROM es_ctl),
         es_hlc = (SELECT hlc FROM es_ctl),
         es_deleted = 0,
         es_origin = NULL,
         es_oseq = NULL
   WHERE {{new_key_match}};
  DELETE FROM es_tombstones WHERE tbl = {{tbl}} AND key = {{new_key_json}};
END;
;;
-- After an UPDATE (not the stamping one, which changes es_ver). A key change
-- first writes a tombstone for the old key, with its own version.
CREATE TRIGGER {{trg_update}} AFTER UPDATE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0 AND NEW.es_ver IS OLD.es_ver
BEGIN
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1)
   WHERE NOT ({{key_unchanged}});
  INSERT OR REPLACE INTO es_tombstones (tbl, key, es_ver, es_hlc, es_origin, es_oseq)
  SELECT {{tbl}}, {{old_key_json}}, seq, hlc, NULL, NULL FROM es_ctl
   WHERE NOT ({{key_unchanged}});
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1,
                   OLD.es_hlc + 1);
  UPDATE {{table}}
     SET es_ver = (SELECT seq FROM es_ctl),
         es_hlc = (SELECT hlc FROM es_ctl),
         es_origin = NULL,
         es_oseq = NULL
   WHERE {{new_key_match}};
  DELETE FROM es_tombstones
   WHERE tbl = {{tbl}} AND key = {{new_key_json}} AND NOT ({{key_unchanged}});
END;
