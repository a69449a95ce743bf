-- edgesync: provision central table {{table_name}} for sync.
--
-- Adds five metadata columns, an index and two or three triggers (written for
-- multi-row statements: they join the inserted/deleted pseudo-tables, never
-- assume one row). The triggers make every application write visible to
-- edgesync with no change to the application. Writes made by edgesync itself
-- run with SESSION_CONTEXT(N'edgesync.applying') = 1 (sp_set_session_context)
-- and carry the pushing node's origin.
-- Each statement runs only when its object is missing or out of date; all of
-- them run in one transaction.
--
-- Not captured: TRUNCATE TABLE and bulk loads with FIRE_TRIGGERS off (no
-- triggers fire for them). A soft-delete table gets an INSTEAD OF DELETE
-- trigger, which SQL Server refuses on a table that is the target of an
-- ON DELETE CASCADE foreign key.

-- step: columns | add the edgesync metadata columns to {{table_name}}
-- es_ver     central version: a rowversion (existing rows each get one)
-- es_deleted soft-delete marker
-- es_hlc     hybrid logical clock stamp of the last write (last-write-wins)
-- es_origin  node whose push last wrote the row; NULL = a central application write
-- es_oseq    that node's local sequence number of the write (replay detection)
ALTER TABLE {{table}} ADD
    es_ver     rowversion    NOT NULL,
    es_deleted bit           NOT NULL CONSTRAINT {{df_deleted}} DEFAULT 0,
    es_hlc     bigint        NOT NULL CONSTRAINT {{df_hlc}} DEFAULT 0,
    es_origin  nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq    bigint        NULL;
;;
-- step: ver_index | index for pulling the rows of {{table_name}} written after a watermark
CREATE INDEX {{ver_index}} ON {{table}} (es_ver);
;;
-- step: trg_write | trigger stamping application writes to {{table_name}}
-- A (re)inserted key clears its tombstone. An application write gets a fresh
-- HLC stamp, past the row's own (OLD + 1: a central write made after seeing
-- an edge's write wins under last-write-wins even when that edge's clock ran
-- ahead), and loses any origin it tried to set, so only edgesync's own apply
-- can claim to come from a node. An update that changes a key writes a
-- tombstone for the old key.
CREATE OR ALTER TRIGGER {{trg_write}} ON {{table}} AFTER INSERT, UPDATE AS
BEGIN
    /* edgesync {{fingerprint}} */
    SET NOCOUNT ON;
    IF TRIGGER_NESTLEVEL(@@PROCID) > 1 RETURN;
    IF NOT EXISTS (SELECT 1 FROM inserted) RETURN;
    DELETE ts FROM {{schema}}.es_tombstones AS ts
      JOIN inserted AS i ON ts.tbl = {{tbl}} AND ts.k = {{key_json_i}};
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    UPDATE t
       SET es_origin = NULL, es_oseq = NULL,
           es_hlc = CASE WHEN d.es_hlc IS NOT NULL AND d.es_hlc + 1 > @now
                         THEN d.es_hlc + 1 ELSE @now END
      FROM {{table}} AS t
      JOIN inserted AS i ON {{key_match_t_i}}
      LEFT JOIN deleted AS d ON {{key_match_d_i}};
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    MERGE {{schema}}.es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT {{key_json_d}} AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d
            WHERE NOT EXISTS (SELECT 1 FROM inserted AS i WHERE {{key_match_d_i}})) AS s
       ON ts.tbl = {{tbl}} AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES ({{tbl}}, s.k, s.hlc);
END
;;
-- step: trg_delete | trigger keeping the tombstones of {{table_name}}
-- An application delete writes a tombstone for each deleted key, stamped past
-- the row's own HLC stamp (edgesync's own apply writes its tombstones
-- itself, with the node's origin).
CREATE OR ALTER TRIGGER {{trg_delete}} ON {{table}} AFTER DELETE AS
BEGIN
    /* edgesync {{fingerprint}} */
    SET NOCOUNT ON;
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    MERGE {{schema}}.es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT {{key_json_d}} AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d) AS s
       ON ts.tbl = {{tbl}} AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES ({{tbl}}, s.k, s.hlc);
END
;;
-- step: trg_soft | soft deletes: an application DELETE on {{table_name}} sets es_deleted instead
-- (deletes = "soft" only). The row stays, marked and stamped like any update;
-- edgesync's own apply deletes for real.
CREATE OR ALTER TRIGGER {{trg_soft}} ON {{table}} INSTEAD OF DELETE AS
BEGIN
    /* edgesync {{fingerprint}} */
    SET NOCOUNT ON;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1
    BEGIN
        DELETE t FROM {{table}} AS t JOIN deleted AS d ON {{key_match_t_d}};
        RETURN;
    END;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    UPDATE t
       SET es_deleted = 1, es_origin = NULL, es_oseq = NULL,
           es_hlc = CASE WHEN t.es_hlc + 1 > @now THEN t.es_hlc + 1 ELSE @now END
      FROM {{table}} AS t
      JOIN deleted AS d ON {{key_match_t_d}};
END
