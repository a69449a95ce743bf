-- edgesync: record the column list this edge table syncs (es_schema), and
-- when columns were added, restart its pull from the beginning so the rows
-- the edge already has get their values ({{refill}} lists those columns;
-- {{restart_pull}} is 1 or 0). The push watermark and pending changes are
-- untouched.
INSERT INTO es_schema (tbl, columns, key, fingerprint, refill, changed_at)
VALUES ({{tbl}}, {{columns}}, {{key}}, {{fingerprint}}, {{refill}},
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (tbl) DO UPDATE SET columns = excluded.columns, key = excluded.key,
  fingerprint = excluded.fingerprint, refill = excluded.refill,
  changed_at = excluded.changed_at;
;;
UPDATE es_state SET pull_token = NULL WHERE tbl = {{tbl}} AND {{restart_pull}} = 1;
