-- edgesync: es_rows_<table>, one row per row of a synced table, for
-- applications: its key columns and
--   pending      1 when the row has local changes not yet acknowledged by the
--                central (es_ver above the table's push watermark)
--   deleted      the soft-delete marker (es_deleted)
--   in_conflict  1 while a manual conflict on the row is open (es_conflicts)
--   quarantined  1 while a change of the row is set aside (es_quarantine)
--   synced       1 when the row holds a central version and none of the above
--                applies
-- Hard-deleted rows waiting to be pushed are counted in es_status.pending.
CREATE VIEW {{view}} AS
SELECT {{key_select}},
       r.es_ver > COALESCE((SELECT s.push_wm FROM es_state AS s WHERE s.tbl = {{tbl}}), 0) AS pending,
       r.es_deleted AS deleted,
       EXISTS (SELECT 1 FROM es_conflicts AS c
                WHERE c.tbl = {{tbl}} AND c.row_key = {{key_json}}) AS in_conflict,
       EXISTS (SELECT 1 FROM es_quarantine AS q
                WHERE q.tbl = {{tbl}} AND q.key = {{key_json}}) AS quarantined,
       r.es_cver IS NOT NULL
         AND r.es_ver <= COALESCE((SELECT s.push_wm FROM es_state AS s WHERE s.tbl = {{tbl}}), 0)
         AND NOT EXISTS (SELECT 1 FROM es_conflicts AS c
                          WHERE c.tbl = {{tbl}} AND c.row_key = {{key_json}})
         AND NOT EXISTS (SELECT 1 FROM es_quarantine AS q
                          WHERE q.tbl = {{tbl}} AND q.key = {{key_json}}) AS synced
  FROM {{table}} AS r;
