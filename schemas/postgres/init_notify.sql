-- edgesync: announce commits to {{table_name}}, so edge daemons pull at once.
--
-- A statement-level trigger sends NOTIFY on channel 'edgesync' with the
-- table's name as payload. NOTIFY is transactional: listeners hear it only
-- when the writing transaction commits (never for a rollback), which is
-- exactly when a commit-safe pull can see the rows. PostgreSQL folds
-- identical notifications of one transaction into one, so a bulk write sends
-- one message per table. The daemon's interval pulls stay the safety net: a
-- missed notification only delays a change to the next `sync.interval`.
-- Kept apart from the stamping triggers (init_table.sql) so each can change
-- on its own. Each statement runs only when its object is missing or out of
-- date.

-- step: notify_fn | trigger function announcing commits on channel 'edgesync' (shared by the tables of schema {{schema_name}})
CREATE OR REPLACE FUNCTION {{schema}}.es_notify() RETURNS trigger LANGUAGE plpgsql AS $es$
BEGIN
    PERFORM pg_notify('edgesync', TG_ARGV[0]);
    RETURN NULL;
END
$es$;
;;
-- step: notify_trigger | announce commits to {{table_name}} (one NOTIFY per writing statement, delivered at commit)
CREATE TRIGGER es_notify AFTER INSERT OR UPDATE OR DELETE ON {{table}}
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.es_notify({{tbl}});
