-- edgesync: es_state columns for the status views (init-sync adds the ones
-- a file lacks).
--   syncing_since  set (UTC) when a sync of the table starts, cleared when it
--                  ends; a crash leaves it set until the next sync of the table
--   last_sync_at   when the table last synced without an error (UTC), whether
--                  or not anything moved
ALTER TABLE es_state ADD COLUMN syncing_since TEXT;
;;
ALTER TABLE es_state ADD COLUMN last_sync_at TEXT;
