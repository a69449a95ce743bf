-- edgesync: columns added to every synced edge table. Only the statements for
-- columns the table does not have yet are run. All have defaults, so existing
-- rows and the application's INSERTs that do not name them keep working.
--   es_ver      local change sequence of the row's last local write (0 = never
--               written locally); the row is pending upload while es_ver > push_wm
--   es_cver     central version the row was last synced at: the conflict base
--   es_deleted  soft-delete marker (tables with deletes = "soft")
--   es_hlc      hybrid-logical-clock stamp of the row's last write
ALTER TABLE {{table}} ADD COLUMN es_ver INTEGER NOT NULL DEFAULT 0;
;;
ALTER TABLE {{table}} ADD COLUMN es_cver INTEGER;
;;
ALTER TABLE {{table}} ADD COLUMN es_deleted INTEGER NOT NULL DEFAULT 0;
;;
ALTER TABLE {{table}} ADD COLUMN es_hlc INTEGER NOT NULL DEFAULT 0;
