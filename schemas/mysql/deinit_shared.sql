-- edgesync: remove the shared metadata in database {{db_name}} (`deinit-sync`
-- for all tables). User tables are not touched; their edgesync columns and
-- triggers are removed by deinit_table.sql first. Each statement commits on
-- its own (MySQL DDL is not transactional) and runs only when its table
-- exists, so a re-run completes a partial deinit.

-- step: conflicts | drop the conflict log
DROP TABLE IF EXISTS {{db}}.es_conflicts;
;;
-- step: tombstones | drop the tombstones
DROP TABLE IF EXISTS {{db}}.es_tombstones;
;;
-- step: nodes | drop the per-node push high-water marks
DROP TABLE IF EXISTS {{db}}.es_nodes;
;;
-- step: ctl | drop the central version counter
DROP TABLE IF EXISTS {{db}}.es_ctl;
;;
-- step: pulls | drop the per-node pull positions
DROP TABLE IF EXISTS {{db}}.es_pulls;
;;
-- step: purged | drop the purge marks
DROP TABLE IF EXISTS {{db}}.es_purged;
