-- edgesync: remove the edge metadata tables (deinit-sync of every table).
DROP TABLE IF EXISTS es_base;
;;
DROP TABLE IF EXISTS es_quarantine;
;;
DROP TABLE IF EXISTS es_tombstones;
;;
DROP TABLE IF EXISTS es_state;
;;
DROP TABLE IF EXISTS es_ctl;
