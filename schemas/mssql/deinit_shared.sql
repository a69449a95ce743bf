-- edgesync: remove the shared metadata of SQL Server schema {{schema_name}}
-- (`deinit-sync` for all tables). User tables are not touched; their edgesync
-- columns and triggers are removed by deinit_table.sql first.

-- step: conflicts | drop the conflict log
DROP TABLE IF EXISTS {{schema}}.es_conflicts;
;;
-- step: tombstones | drop the tombstones
DROP TABLE IF EXISTS {{schema}}.es_tombstones;
;;
-- step: nodes | drop the per-node push high-water marks
DROP TABLE IF EXISTS {{schema}}.es_nodes;
