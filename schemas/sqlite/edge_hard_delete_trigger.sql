-- edgesync: deletes = "hard". The row goes; a tombstone carrying its key, a
-- new local sequence and its conflict base (es_cver) takes its place until the
-- central has acknowledged the delete.
CREATE TRIGGER {{trg_delete}} AFTER DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
  INSERT OR REPLACE INTO es_tombstones (tbl, key, es_ver, es_hlc, es_cver)
  SELECT {{tbl}}, {{old_key_json}}, seq, hlc, OLD.es_cver FROM es_ctl;
END;
