-- edgesync: remove the edge metadata tables (deinit-sync of every table).
-- (The views over them are dropped before, by name.)
DROP TABLE IF EXISTS es_schema;
;;
DROP TABLE IF EXISTS es_sync_requests;
;;
DROP TABLE IF EXISTS es_conflicts;
;;
DROP TABLE IF EXISTS es_base;
;;
DROP TABLE IF EXISTS es_quarantine;
;;
DROP TABLE IF EXISTS es_tombstones;
;;
DROP TABLE IF EXISTS es_state;
;;
DROP TABLE IF EXISTS es_ctl;
