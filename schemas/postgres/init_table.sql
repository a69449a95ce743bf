-- edgesync: provision central table {{table_name}} for sync.
--
-- Adds six metadata columns, an index and two row triggers. The triggers make
-- every application write visible to edgesync with no change to the
-- application; writes made by edgesync itself run with the transaction-local
-- setting edgesync.applying = 'on' and carry the pushing node's origin.
-- edgesync's own push statements stamp their rows and keep the tombstones
-- themselves, set-based, so the row triggers skip them (their WHEN clause,
-- checked without calling plpgsql); a write nested in a trigger (a foreign
-- key's ON DELETE SET NULL, an application trigger) is stamped as before.
-- Each statement runs only when its object is missing or out of date.

-- step: columns | add the edgesync metadata columns to {{table_name}}
-- es_ver     central version, from {{schema_name}}.es_version (existing rows each get one)
-- es_txid    id of the transaction that last wrote the row (commit-safe pulls)
-- es_deleted soft-delete marker
-- es_hlc     hybrid logical clock stamp of the last write (last-write-wins)
-- es_origin  node whose push last wrote the row; NULL = a central application write
-- es_oseq    that node's local sequence number of the write (replay detection)
ALTER TABLE {{table}}
    ADD COLUMN IF NOT EXISTS es_ver     bigint  NOT NULL DEFAULT nextval({{seq}}),
    ADD COLUMN IF NOT EXISTS es_txid    bigint  NOT NULL DEFAULT txid_current(),
    ADD COLUMN IF NOT EXISTS es_deleted boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS es_hlc     bigint  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS es_origin  text,
    ADD COLUMN IF NOT EXISTS es_oseq    bigint;
;;
-- step: pull_index | index for pulling the rows of {{table_name}} written after a snapshot, in (transaction, key) order
-- An incremental pull pages through the changed rows in this order, so each
-- page is one range scan of this index that stops after the page's rows. The
-- build blocks writes to {{table_name}} while it runs; on a large table a DBA
-- may build it beforehand without blocking writes, under the same name:
-- CREATE INDEX CONCURRENTLY {{pull_index}} ON {{table}} (es_txid, {{key_columns}});
-- and init-sync then leaves it as it is.
CREATE INDEX IF NOT EXISTS {{pull_index}} ON {{table}} (es_txid, {{key_columns}});
;;
-- step: txid_index_old | drop the es_txid-only index an older edgesync put on {{table_name}} (the index above replaces it)
DROP INDEX IF EXISTS {{schema}}.{{txid_index}};
;;
-- step: before_fn | trigger function stamping writes to {{table_name}} (and soft deletes)
-- Every insert and update gets a new version and the writing transaction id.
-- An application write also gets a fresh HLC stamp and loses any origin it
-- tried to set, so only edgesync's own apply can claim to come from a node.
-- An update's stamp is past the row's own (OLD.es_hlc + 1): a central write
-- made after seeing an edge's write wins under last-write-wins even when that
-- edge's wall clock ran hours ahead.
-- A delete on a soft-delete table becomes "set es_deleted" (which is stamped
-- like any update) and the row stays.
CREATE OR REPLACE FUNCTION {{before_fn}}() RETURNS trigger LANGUAGE plpgsql AS $es$
DECLARE
    applying boolean := coalesce(current_setting('edgesync.applying', true), '') = 'on';
    soft_deletes constant boolean := {{soft}};
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF soft_deletes AND NOT applying THEN
            UPDATE {{table}} SET es_deleted = true WHERE {{key_match_old}};
            RETURN NULL;
        END IF;
        RETURN OLD;
    END IF;
    NEW.es_ver := nextval({{seq}});
    NEW.es_txid := txid_current();
    IF NOT applying THEN
        NEW.es_origin := NULL;
        NEW.es_oseq := NULL;
        NEW.es_hlc := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16;
        IF TG_OP = 'UPDATE' THEN
            NEW.es_hlc := greatest(NEW.es_hlc, OLD.es_hlc + 1);
        END IF;
    END IF;
    RETURN NEW;
END
$es$;
;;
-- step: after_fn | trigger function keeping the tombstones of {{table_name}}
-- A (re)inserted key clears its tombstone. An application delete, or an
-- application update that changes the key, writes a tombstone for the old key,
-- stamped past the row's own HLC stamp (edgesync's own apply writes its
-- tombstones itself, with the node's origin).
CREATE OR REPLACE FUNCTION {{after_fn}}() RETURNS trigger LANGUAGE plpgsql AS $es$
DECLARE
    applying boolean := coalesce(current_setting('edgesync.applying', true), '') = 'on';
BEGIN
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND {{key_changed}}) THEN
        DELETE FROM {{schema}}.es_tombstones WHERE tbl = {{tbl}} AND key = {{key_json_new}};
    END IF;
    IF NOT applying AND (TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND {{key_changed}})) THEN
        INSERT INTO {{schema}}.es_tombstones AS ts (tbl, key, es_ver, es_txid, es_hlc, es_origin, es_oseq)
        VALUES ({{tbl}}, {{key_json_old}}, nextval({{seq}}), txid_current(),
                greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16,
                         OLD.es_hlc + 1), NULL, NULL)
        ON CONFLICT (tbl, key) DO UPDATE
            SET es_ver = excluded.es_ver, es_txid = excluded.es_txid, es_hlc = excluded.es_hlc,
                es_origin = NULL, es_oseq = NULL;
    END IF;
    RETURN NULL;
END
$es$;
;;
-- step: before_trigger_old | drop the stamping trigger an older edgesync put on {{table_name}} (it is re-created at once, in the same transaction)
DROP TRIGGER IF EXISTS es_before ON {{table}};
;;
-- step: before_trigger | stamp every write to {{table_name}} but edgesync's own push statements
CREATE TRIGGER es_before BEFORE INSERT OR UPDATE OR DELETE ON {{table}}
    FOR EACH ROW
    WHEN (coalesce(current_setting('edgesync.applying', true), '') <> 'on' OR pg_trigger_depth() > 0)
    EXECUTE FUNCTION {{before_fn}}();
;;
-- step: after_trigger_old | drop the tombstone trigger an older edgesync put on {{table_name}} (it is re-created at once, in the same transaction)
DROP TRIGGER IF EXISTS es_after ON {{table}};
;;
-- step: after_trigger | keep the tombstones of {{table_name}} but for edgesync's own push statements
CREATE TRIGGER es_after AFTER INSERT OR UPDATE OR DELETE ON {{table}}
    FOR EACH ROW
    WHEN (coalesce(current_setting('edgesync.applying', true), '') <> 'on' OR pg_trigger_depth() > 0)
    EXECUTE FUNCTION {{after_fn}}();
