-- edgesync: deletes = "hard". The row goes; a tombstone with a new central
-- version and a clock tick past the row's own stamp carries the delete to
-- the edges.
CREATE TRIGGER {{trg_delete}} AFTER DELETE ON {{table}}
WHEN (SELECT applying FROM es_ctl) = 0
BEGIN
  UPDATE es_ctl
     SET seq = seq + 1,
         hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1,
                   OLD.es_hlc + 1);
  INSERT OR REPLACE INTO es_tombstones (tbl, key, es_ver, es_hlc, es_origin, es_oseq)
  SELECT {{tbl}}, {{old_key_json}}, seq, hlc, NULL, NULL FROM es_ctl;
END;
