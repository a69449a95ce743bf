-- edgesync: deletes = "hard". The row goes; a tombstone carrying its key, a
-- new local sequence and its conflict base (es_cver) takes its place until the
-- central has acknowledged the delete. A row deleted while clean leaves its
-- values in es_base, as the update trigger does.
CREATE TRIGGER {{trg_delete}} AFTER DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
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
END;
