-- edgesync: columns added to every synced central table (only the missing
-- ones run). All have defaults, so the application's writes keep working.
--   es_ver      central version of the row's last write (from es_ctl.seq)
--   es_deleted  soft-delete marker (tables with deletes = "soft")
--   es_hlc      hybrid-logical-clock stamp of the last write
--   es_origin   node whose push last wrote the row; NULL = a central application
--   es_oseq     that node's local sequence of the write (replay detection)
ALTER TABLE {{table}} ADD COLUMN es_ver INTEGER NOT NULL DEFAULT 0;
;;
ALTER TABLE {{table}} ADD COLUMN es_deleted INTEGER NOT NULL DEFAULT 0;
;;
ALTER TABLE {{table}} ADD COLUMN es_hlc INTEGER NOT NULL DEFAULT 0;
;;
ALTER TABLE {{table}} ADD COLUMN es_origin TEXT;
;;
ALTER TABLE {{table}} ADD COLUMN es_oseq INTEGER;
