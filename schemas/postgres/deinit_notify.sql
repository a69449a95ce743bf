-- edgesync: stop announcing commits to {{table_name}} (see init_notify.sql).
-- The shared function goes only with `deinit-sync` for all tables; it cannot
-- be dropped while a table still uses it, so a partial deinit keeps it.

-- step: notify_trigger | drop the commit-announcing trigger of {{table_name}}
DROP TRIGGER IF EXISTS es_notify ON {{table}};
;;
-- step: notify_fn | drop the commit-announcing trigger function of schema {{schema_name}}
DROP FUNCTION IF EXISTS {{schema}}.es_notify();
