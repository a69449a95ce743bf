-- edgesync: forget a table's pending deletes, conflict bases, quarantined
-- changes, parked conflicts and sync state
-- (deinit-sync).
DELETE FROM es_tombstones WHERE tbl = {{tbl}};
;;
DELETE FROM es_base WHERE tbl = {{tbl}};
;;
DELETE FROM es_state WHERE tbl = {{tbl}};
;;
DELETE FROM es_quarantine WHERE tbl = {{tbl}};
;;
DELETE FROM es_conflicts WHERE tbl = {{tbl}};
;;
DELETE FROM es_schema WHERE tbl = {{tbl}};
