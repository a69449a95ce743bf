-- edgesync: forget a table's pending deletes and sync state (deinit-sync).
DELETE FROM es_tombstones WHERE tbl = {{tbl}};
;;
DELETE FROM es_state WHERE tbl = {{tbl}};
