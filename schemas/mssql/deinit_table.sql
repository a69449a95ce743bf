-- edgesync: remove everything edgesync added to central table {{table_name}}.
-- The table's own columns and rows stay exactly as they are (rows deleted on a
-- soft-delete table stay, as rows). Each statement runs only when its object
-- exists.

-- step: trg_soft | drop the soft-delete trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_soft}};
;;
-- step: trg_delete | drop the tombstone trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_delete}};
;;
-- step: trg_write | drop the stamping trigger of {{table_name}}
DROP TRIGGER IF EXISTS {{trg_write}};
;;
-- step: ver_index | drop the es_ver index
DROP INDEX IF EXISTS {{ver_index}} ON {{table}};
;;
-- step: columns | drop the edgesync metadata columns of {{table_name}} (and their defaults)
ALTER TABLE {{table}} DROP CONSTRAINT IF EXISTS {{df_deleted}};
ALTER TABLE {{table}} DROP CONSTRAINT IF EXISTS {{df_hlc}};
ALTER TABLE {{table}} DROP COLUMN IF EXISTS es_ver, es_deleted, es_hlc, es_origin, es_oseq;
;;
-- step: nodes | forget the push high-water marks of {{table_name}}
-- (a later init-sync starts clean instead of taking new changes for replays)
DELETE FROM {{schema}}.es_nodes WHERE tbl = {{tbl}};
;;
-- step: tombstones | forget the tombstones of {{table_name}}
DELETE FROM {{schema}}.es_tombstones WHERE tbl = {{tbl}};
