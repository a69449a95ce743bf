-- edgesync: remove everything edgesync added to central table {{table_name}}.
-- The table's own columns and rows stay exactly as they are (rows deleted on a
-- soft-delete table stay, as rows). Each statement runs only when its object
-- exists.

-- step: before_trigger | drop the stamping trigger of {{table_name}}
DROP TRIGGER IF EXISTS es_before ON {{table}};
;;
-- step: after_trigger | drop the tombstone trigger of {{table_name}}
DROP TRIGGER IF EXISTS es_after ON {{table}};
;;
-- step: before_fn | drop the stamping trigger function
DROP FUNCTION IF EXISTS {{before_fn}}();
;;
-- step: after_fn | drop the tombstone trigger function
DROP FUNCTION IF EXISTS {{after_fn}}();
;;
-- step: pull_index | drop the (es_txid, key) index used by pulls
DROP INDEX IF EXISTS {{schema}}.{{pull_index}};
;;
-- step: txid_index | drop the es_txid-only index an older edgesync made
DROP INDEX IF EXISTS {{schema}}.{{txid_index}};
;;
-- step: columns | drop the edgesync metadata columns of {{table_name}}
ALTER TABLE {{table}}
    DROP COLUMN IF EXISTS es_ver,
    DROP COLUMN IF EXISTS es_txid,
    DROP COLUMN IF EXISTS es_deleted,
    DROP COLUMN IF EXISTS es_hlc,
    DROP COLUMN IF EXISTS es_origin,
    DROP COLUMN IF EXISTS es_oseq;
;;
-- step: nodes | forget the push high-water marks of {{table_name}}
-- (a later init-sync starts clean instead of taking new changes for replays)
DELETE FROM {{schema}}.es_nodes WHERE tbl = {{tbl}};
;;
-- step: tombstones | forget the tombstones of {{table_name}}
DELETE FROM {{schema}}.es_tombstones WHERE tbl = {{tbl}};
