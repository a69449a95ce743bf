-- edgesync: remove the shared metadata of Oracle schema {{owner_name}}
-- (`deinit-sync` for all tables). User tables are not touched; their edgesync
-- columns and triggers are removed by deinit_table.sql first. PURGE: nothing
-- is left in the recycle bin.

-- step: conflicts | drop the conflict log
DROP TABLE {{owner}}.es_conflicts PURGE
;;
-- step: tombstones | drop the tombstones (with their trigger and index)
DROP TABLE {{owner}}.es_tombstones PURGE
;;
-- step: nodes | drop the per-node push high-water marks
DROP TABLE {{owner}}.es_nodes PURGE
;;
-- step: package | drop the es_sync package
DROP PACKAGE {{owner}}.es_sync
;;
-- step: sequence | drop the central version counter
DROP SEQUENCE {{owner}}.es_version
