-- edgesync: remove everything edgesync added to central table {{table_name}}.
-- The table's own columns and rows stay exactly as they are (rows deleted on a
-- soft-delete table stay, as rows). Each statement runs only when its object
-- exists.

-- step: trg_tomb | drop the tombstone trigger of {{table_name}}
DROP TRIGGER {{trg_tomb}}
;;
-- step: trg_stamp | drop the stamping trigger of {{table_name}}
DROP TRIGGER {{trg_stamp}}
;;
-- step: scn_index | drop the es_scn index
DROP INDEX {{scn_index}}
;;
-- step: stage | drop the staging table
DROP TABLE {{stage}} PURGE
;;
-- step: columns | drop the edgesync metadata columns of {{table_name}}
ALTER TABLE {{table}} DROP (es_ver, es_scn, es_deleted, es_hlc, es_origin, es_oseq)
;;
-- step: nodes | forget the push high-water marks of {{table_name}}
DELETE FROM {{owner}}.es_nodes WHERE tbl = {{tbl}}
;;
-- step: tombstones | forget the tombstones of {{table_name}}
DELETE FROM {{owner}}.es_tombstones WHERE tbl = {{tbl}}
