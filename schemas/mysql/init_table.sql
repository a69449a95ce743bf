-- edgesync: provision central table {{table_name}} for sync.
--
-- Adds five metadata columns, an index and five row triggers. The triggers
-- make every application write visible to edgesync with no change to the
-- application. Writes made by edgesync itself run with the session variable
-- @es_applying = 1 and carry the pushing node's origin.
--
-- How versions stay commit-safe without a snapshot xmin ("stamp on read"):
-- a trigger never takes a version. It marks the row changed (es_ver = NULL);
-- the next pull first runs a short stamping step that locks es_ctl and gives
-- fresh, increasing versions to the changed rows whose writers have
-- committed (rows still locked by an open transaction are skipped and
-- stamped by a later step, with a later version). Versions are therefore
-- handed out in commit order, and "every version above the last one
-- delivered" misses nothing.
--
-- MySQL triggers cannot change the table they fire on, so a DELETE cannot be
-- turned into a soft delete here: an application DELETE removes the row and
-- writes a tombstone, which edges of a soft-delete table apply by setting
-- their es_deleted marker. Pushed soft deletes keep the row and set
-- es_deleted.
--
-- MySQL DDL is not transactional: every statement commits on its own, and
-- init-sync plans only what is missing, so re-running it completes a
-- partial run. Not captured: TRUNCATE, and rows changed by foreign-key
-- cascades (MySQL fires no triggers for them).

-- step: col_es_ver | add column es_ver to {{table_name}}: central version; NULL = changed, waiting for a version (existing rows start so)
ALTER TABLE {{table}} ADD COLUMN es_ver BIGINT NULL;
;;
-- step: col_es_deleted | add column es_deleted to {{table_name}}: soft-delete marker
ALTER TABLE {{table}} ADD COLUMN es_deleted TINYINT(1) NOT NULL DEFAULT 0;
;;
-- step: col_es_hlc | add column es_hlc to {{table_name}}: hybrid logical clock stamp of the last write (last-write-wins)
ALTER TABLE {{table}} ADD COLUMN es_hlc BIGINT NOT NULL DEFAULT 0;
;;
-- step: col_es_origin | add column es_origin to {{table_name}}: node whose push last wrote the row; NULL = a central application
ALTER TABLE {{table}} ADD COLUMN es_origin VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
;;
-- step: col_es_oseq | add column es_oseq to {{table_name}}: that node's local sequence number of the write (replay detection)
ALTER TABLE {{table}} ADD COLUMN es_oseq BIGINT NULL;
;;
-- step: ver_index | index es_ver of {{table_name}}: finds changed rows (NULL) and pulls by version
CREATE INDEX es_ver ON {{table}} (es_ver);
;;
-- step: trg_bi | trigger marking application inserts into {{table_name}} as changed
CREATE TRIGGER {{trg_bi}} BEFORE INSERT ON {{table}} FOR EACH ROW
BEGIN
    IF COALESCE(@es_applying, 0) = 0 THEN
        SET NEW.es_ver = NULL, NEW.es_origin = NULL, NEW.es_oseq = NULL,
            NEW.es_hlc = (UNIX_TIMESTAMP() * 1000 + FLOOR(MICROSECOND(NOW(6)) / 1000)) << 16;
    END IF;
END
;;
-- step: trg_bu | trigger marking application updates of {{table_name}} as changed
CREATE TRIGGER {{trg_bu}} BEFORE UPDATE ON {{table}} FOR EACH ROW
BEGIN
    IF COALESCE(@es_applying, 0) = 0 THEN
        SET NEW.es_ver = NULL, NEW.es_origin = NULL, NEW.es_oseq = NULL,
            NEW.es_hlc = GREATEST((UNIX_TIMESTAMP() * 1000 + FLOOR(MICROSECOND(NOW(6)) / 1000)) << 16,
                                  OLD.es_hlc + 1);
    END IF;
END
;;
-- step: trg_au | trigger turning a key change in {{table_name}} into a delete of the old key
CREATE TRIGGER {{trg_au}} AFTER UPDATE ON {{table}} FOR EACH ROW
BEGIN
    IF {{key_json_old}} <> {{key_json_new}} THEN
        IF COALESCE(@es_applying, 0) = 0 THEN
            INSERT INTO {{tombstones}} (tbl, k, es_ver, es_hlc, es_origin, es_oseq)
            VALUES ({{tbl}}, {{key_json_old}}, NULL, NEW.es_hlc, NULL, NULL)
            ON DUPLICATE KEY UPDATE es_ver = NULL, es_hlc = NEW.es_hlc, es_origin = NULL,
                                    es_oseq = NULL;
        END IF;
    END IF;
END
;;
-- step: trg_ad | trigger writing a tombstone for an application delete from {{table_name}}
CREATE TRIGGER {{trg_ad}} AFTER DELETE ON {{table}} FOR EACH ROW
BEGIN
    IF COALESCE(@es_applying, 0) = 0 THEN
        INSERT INTO {{tombstones}} (tbl, k, es_ver, es_hlc, es_origin, es_oseq)
        VALUES ({{tbl}}, {{key_json_old}}, NULL,
                GREATEST((UNIX_TIMESTAMP() * 1000 + FLOOR(MICROSECOND(NOW(6)) / 1000)) << 16,
                         OLD.es_hlc + 1),
                NULL, NULL)
        ON DUPLICATE KEY UPDATE
            es_ver = NULL,
            es_hlc = GREATEST((UNIX_TIMESTAMP() * 1000 + FLOOR(MICROSECOND(NOW(6)) / 1000)) << 16,
                              OLD.es_hlc + 1),
            es_origin = NULL, es_oseq = NULL;
    END IF;
END
