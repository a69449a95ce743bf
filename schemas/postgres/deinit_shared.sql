-- edgesync: remove the shared metadata of PostgreSQL schema {{schema_name}}
-- (`deinit-sync` for all tables). User tables are not touched; their edgesync
-- columns and triggers are removed by deinit_table.sql first. The sequence
-- cannot be dropped while any table still uses it as a default, so a partial
-- deinit fails and changes nothing.

-- step: conflicts | drop the conflict log
DROP TABLE IF EXISTS {{schema}}.es_conflicts;
;;
-- step: tombstones | drop the tombstones
DROP TABLE IF EXISTS {{schema}}.es_tombstones;
;;
-- step: pulls | drop the per-node pull positions
DROP TABLE IF EXISTS {{schema}}.es_pulls;
;;
-- step: purged | drop the purge marks
DROP TABLE IF EXISTS {{schema}}.es_purged;
;;
-- step: nodes | drop the per-node push high-water marks
DROP TABLE IF EXISTS {{schema}}.es_nodes;
;;
-- step: sequence | drop the central version counter
DROP SEQUENCE IF EXISTS {{schema}}.es_version;
