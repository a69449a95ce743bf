-- edgesync: remove everything edgesync added to central table {{table_name}}.
-- The table's own columns and rows stay exactly as they are (rows soft-deleted
-- by an edge stay, as rows). Each statement commits on its own (MySQL DDL is
-- not transactional) and runs only when its object exists, so a re-run
-- completes a partial deinit.

-- step: trg_bi | drop the insert trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_bi}};
;;
-- step: trg_bu | drop the update trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_bu}};
;;
-- step: trg_ai | drop the tombstone-clearing trigger of {{table_name}} (created by
-- earlier versions only: its DELETE on es_tombstones took gap locks that made
-- application transactions deadlock; pulls now skip tombstones of live rows)
DROP TRIGGER IF EXISTS {{trg_ai}};
;;
-- step: trg_au | drop the key-change trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_au}};
;;
-- step: trg_ad | drop the delete trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_ad}};
;;
-- step: ver_index | drop the es_ver index of {{table_name}}
DROP INDEX es_ver ON {{table}};
;;
-- step: col_es_ver | drop column es_ver of {{table_name}}
ALTER TABLE {{table}} DROP COLUMN es_ver;
;;
-- step: col_es_deleted | drop column es_deleted of {{table_name}}
ALTER TABLE {{table}} DROP COLUMN es_deleted;
;;
-- step: col_es_hlc | drop column es_hlc of {{table_name}}
ALTER TABLE {{table}} DROP COLUMN es_hlc;
;;
-- step: col_es_origin | drop column es_origin of {{table_name}}
ALTER TABLE {{table}} DROP COLUMN es_origin;
;;
-- step: col_es_oseq | drop column es_oseq of {{table_name}}
ALTER TABLE {{table}} DROP COLUMN es_oseq;
;;
-- step: nodes | forget the push high-water marks of {{table_name}}
-- (a later init-sync starts clean instead of taking new changes for replays)
DELETE FROM {{nodes}} WHERE tbl = {{tbl}};
;;
-- step: tombstones | forget the tombstones of {{table_name}}
DELETE FROM {{tombstones}} WHERE tbl = {{tbl}};
