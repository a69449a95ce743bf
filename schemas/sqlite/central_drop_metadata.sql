-- edgesync: remove the central metadata tables, conflict log included
-- (deinit-sync of every table).
DROP TABLE IF EXISTS es_conflicts;
;;
DROP TABLE IF EXISTS es_tombstones;
;;
DROP TABLE IF EXISTS es_nodes;
;;
DROP TABLE IF EXISTS es_pulls;
;;
DROP TABLE IF EXISTS es_purged;
;;
DROP TABLE IF EXISTS es_ctl;
