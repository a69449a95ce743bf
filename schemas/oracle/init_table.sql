-- edgesync: provision central table {{table_name}} for sync.
--
-- Adds six metadata columns, an index, two row triggers and a global
-- temporary table the pushes stage their rows in. The triggers make every
-- application write visible to edgesync with no change to the application.
-- Writes made by edgesync itself run in sessions whose client info is
-- 'edgesync:applying' (es_sync.applying = 1) and carry the pushing node's
-- origin.
--
-- Deletes: an Oracle row trigger cannot turn a DELETE into an UPDATE of its
-- own table, so an application DELETE removes the row and writes a
-- tombstone; edges of a soft-delete table apply it by setting their
-- es_deleted marker. A soft delete pushed by an edge keeps the row and sets
-- es_deleted.
--
-- Not captured: TRUNCATE, direct-path loads that bypass triggers, and writes
-- made with the triggers disabled.

-- step: columns | add the edgesync metadata columns to {{table_name}}
-- es_ver     central version, from {{owner_name}}.es_version (0 for rows already there)
-- es_scn     SCN of the last write (commit-safe pulls)
-- es_deleted soft-delete marker
-- es_hlc     hybrid logical clock stamp of the last write (last-write-wins)
-- es_origin  node whose push last wrote the row; NULL = a central application write
-- es_oseq    that node's local sequence number of the write (replay detection)
ALTER TABLE {{table}} ADD (
    es_ver     NUMBER(19) DEFAULT 0 NOT NULL,
    es_scn     NUMBER DEFAULT 0 NOT NULL,
    es_deleted NUMBER(1) DEFAULT 0 NOT NULL,
    es_hlc     NUMBER(19) DEFAULT 0 NOT NULL,
    es_origin  NVARCHAR2(256),
    es_oseq    NUMBER(19)
)
;;
-- step: scn_index | index for pulling the rows of {{table_name}} written after a watermark
CREATE INDEX {{scn_index}} ON {{table}} (es_scn)
;;
-- step: trg_stamp | trigger stamping every write to {{table_name}}
-- Every insert and update gets a new version and its write SCN. An
-- application write also gets a fresh HLC stamp (past the row's own on an
-- update: a central write made after seeing an edge's write wins under
-- last-write-wins even when that edge's clock ran ahead) and loses any
-- origin it tried to set.
CREATE OR REPLACE TRIGGER {{trg_stamp}}
BEFORE INSERT OR UPDATE ON {{table}} FOR EACH ROW
BEGIN
    /* edgesync {{fingerprint}} */
    :new.es_ver := {{owner}}.es_version.NEXTVAL;
    :new.es_scn := {{owner}}.es_sync.write_scn;
    IF {{owner}}.es_sync.applying = 0 THEN
        :new.es_origin := NULL;
        :new.es_oseq := NULL;
        IF UPDATING THEN
            :new.es_hlc := GREATEST({{owner}}.es_sync.now_hlc, :old.es_hlc + 1);
        ELSE
            :new.es_hlc := {{owner}}.es_sync.now_hlc;
        END IF;
    END IF;
END;
;;
-- step: trg_tomb | trigger keeping the tombstones of {{table_name}}
-- A (re)inserted key clears its tombstone. An application delete, or an
-- update that changes the key, writes a tombstone for the old key, stamped
-- past the row's own HLC stamp.
CREATE OR REPLACE TRIGGER {{trg_tomb}}
AFTER INSERT OR UPDATE OR DELETE ON {{table}} FOR EACH ROW
BEGIN
    /* edgesync {{fingerprint}} */
    IF INSERTING OR (UPDATING AND ({{key_changed}})) THEN
        DELETE FROM {{owner}}.es_tombstones WHERE tbl = {{tbl}} AND k = {{key_json_new}};
    END IF;
    IF {{owner}}.es_sync.applying = 0 AND (DELETING OR (UPDATING AND ({{key_changed}}))) THEN
        MERGE INTO {{owner}}.es_tombstones ts
        USING (SELECT {{key_json_old}} AS k,
                      GREATEST({{owner}}.es_sync.now_hlc, :old.es_hlc + 1) AS hlc
                 FROM dual) s
           ON (ts.tbl = {{tbl}} AND ts.k = s.k)
         WHEN MATCHED THEN UPDATE SET ts.es_hlc = s.hlc, ts.es_origin = NULL, ts.es_oseq = NULL
         WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES ({{tbl}}, s.k, s.hlc);
    END IF;
END;
;;
-- step: stage | the staging table pushes fill with array binds (rows last one transaction)
-- Column aN has the type of the table's N-th synced column.
CREATE GLOBAL TEMPORARY TABLE {{stage}} (
    es_ord  NUMBER(10) NOT NULL,
    es_act  NUMBER(1) NOT NULL,
    es_hv   NUMBER(1) NOT NULL,
    es_del  NUMBER(1) NOT NULL,
    es_oseq NUMBER(19),
    es_hlc  NUMBER(19) NOT NULL,
{{stage_columns}}
) ON COMMIT DELETE ROWS
;;
-- step: stage_comment | mark the staging table with the column types it was made for
COMMENT ON TABLE {{stage}} IS 'edgesync {{stage_fingerprint}}'
