-- edgesync: es_status, one row per synced table of this edge file, for
-- applications (plain SQL, no schema knowledge needed). Recreated by
-- init-sync whenever the set of synced tables changes; dropped by deinit-sync.
--   tbl            edge table
--   pending        local changes not yet acknowledged by the central
--                  (rows and hard deletes)
--   last_push_at   when a push of the table was last acknowledged (UTC)
--   last_pull_at   when a pull pass of the table last completed (UTC)
--   last_sync_at   when the table last synced without an error (UTC)
--   syncing        1 while a sync of the table runs (a marker older than
--                  15 minutes is a crashed sync and reads 0)
--   syncing_since  when that sync started (UTC)
--   last_error     the last sync's error, NULL once a sync succeeds
--   last_error_at  when it was noted (UTC)
--   conflicts      open manual conflicts of the table (rows of es_conflicts)
--   quarantined    local changes the central refused (rows of es_quarantine)
-- The tables part: one "SELECT 'name', <rows with es_ver above push_wm>" per table.
CREATE VIEW es_status AS
WITH t (tbl, rows_pending) AS (
{{tables}}
)
SELECT t.tbl AS tbl,
       t.rows_pending
         + (SELECT count(*) FROM es_tombstones AS d
             WHERE d.tbl = t.tbl AND d.es_ver > COALESCE(s.push_wm, 0)) AS pending,
       s.last_push_at AS last_push_at,
       s.last_pull_at AS last_pull_at,
       s.last_sync_at AS last_sync_at,
       CASE WHEN s.syncing_since >= strftime('%Y-%m-%d %H:%M:%fZ', 'now', '-15 minutes')
            THEN 1 ELSE 0 END AS syncing,
       s.syncing_since AS syncing_since,
       s.last_error AS last_error,
       s.last_error_at AS last_error_at,
       (SELECT count(*) FROM es_conflicts AS c WHERE c.tbl = t.tbl) AS conflicts,
       (SELECT count(*) FROM es_quarantine AS q WHERE q.tbl = t.tbl) AS quarantined
  FROM t LEFT JOIN es_state AS s ON s.tbl = t.tbl;
