-- edgesync: forget a central table's tombstones and per-node push progress
-- (deinit-sync). The conflict log is kept: it is the audit trail.
DELETE FROM es_tombstones WHERE tbl = {{tbl}};
;;
DELETE FROM es_nodes WHERE tbl = {{tbl}};
