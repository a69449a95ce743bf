-- edgesync: shared metadata of a MySQL / MariaDB central, in database {{db_name}}
-- (the database named in central.url; synced tables in other databases keep
-- their metadata here too, so one central has one set).
--
-- MySQL DDL is not transactional: every statement below commits on its own.
-- init-sync checks the catalog before each step and plans only what is
-- missing, so if a step fails, fix the cause and run init-sync again: it
-- completes the partial run. Nothing here touches user tables.

-- step: ctl | the central version counter: one row, whose lock also serializes version assignment
-- seq is the last version handed out. Versions are assigned only by a
-- transaction holding this row locked (the pull's stamping step, or a push
-- stamping its own writes), and the lock is held until that transaction
-- commits, so versions become visible in the order they were assigned.
CREATE TABLE IF NOT EXISTS {{db}}.es_ctl (
    id  TINYINT NOT NULL PRIMARY KEY,
    seq BIGINT  NOT NULL DEFAULT 0
) ENGINE = InnoDB;
;;
-- step: ctl_row | the counter's one row
INSERT IGNORE INTO {{db}}.es_ctl (id, seq) VALUES (1, 0);
;;
-- step: nodes | per node and table, the highest edge sequence applied (exactly-once push)
-- hi is updated in the same transaction as the pushed rows; a change at or
-- below it is a replay and is answered, not applied again.
CREATE TABLE IF NOT EXISTS {{db}}.es_nodes (
    node         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tbl          VARCHAR(130) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    hi           BIGINT      NOT NULL DEFAULT 0,
    last_push_at DATETIME(6) NULL COMMENT 'UTC',
    PRIMARY KEY (node, tbl)
) ENGINE = InnoDB;
;;
-- step: tombstones | deleted rows of synced tables, kept so edges learn about them
-- k: the row's key as a JSON array of text (decimals never pass through a
-- float; TIMESTAMP keys as Unix seconds, independent of any session's
-- time_zone). es_ver NULL: deleted, waiting for a version (see es_ctl).
CREATE TABLE IF NOT EXISTS {{db}}.es_tombstones (
    tbl       VARCHAR(130) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    k         VARCHAR(638) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    es_ver    BIGINT NULL,
    es_hlc    BIGINT NOT NULL DEFAULT 0,
    es_origin VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    es_oseq   BIGINT NULL,
    PRIMARY KEY (tbl, k),
    KEY es_ver (tbl, es_ver)
) ENGINE = InnoDB;
;;
-- step: conflicts | the conflict log (every conflict, however resolved; manual ones stay open)
-- base_json/local_json/central_json/result_json: JSON lists of [column, value].
-- is_open: a manual conflict waiting for `edgesync conflicts resolve`;
-- resolved_at: when it was settled (= at when the policy decided it); kept:
-- the side `conflicts resolve` kept. Settled entries older than
-- sync.conflict_retention are purged. Times are UTC.
CREATE TABLE IF NOT EXISTS {{db}}.es_conflicts (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tbl          VARCHAR(130) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    key_json     LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    node         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    strategy     VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    base_ver     BIGINT       NULL,
    base_json    LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    local_json   LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    central_json LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    result_json  LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    local_hlc    BIGINT       NOT NULL,
    central_hlc  BIGINT       NOT NULL,
    at           DATETIME(6)  NOT NULL COMMENT 'UTC',
    is_open      TINYINT(1)   NOT NULL DEFAULT 0,
    resolved_at  DATETIME(6)  NULL COMMENT 'UTC',
    kept         VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    KEY es_open (is_open, at)
) ENGINE = InnoDB;
;;
-- step: pulls | per node and table, where its last pull stood and when (sync.retention)
-- ver: every version at or below it is on the edge (0 during a full pass). A
-- retention purge never removes a tombstone above the lowest ver of the nodes
-- still active. Times are UTC.
CREATE TABLE IF NOT EXISTS {{db}}.es_pulls (
    node VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tbl  VARCHAR(130) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    ver  BIGINT      NOT NULL,
    at   DATETIME(6) NOT NULL COMMENT 'UTC',
    PRIMARY KEY (node, tbl)
) ENGINE = InnoDB;
;;
-- step: purged | per table, the highest tombstone version a retention purge removed
-- A pull continuing from below it may have missed a delete: it is refused and
-- the edge takes a fresh snapshot of the table.
CREATE TABLE IF NOT EXISTS {{db}}.es_purged (
    tbl VARCHAR(130) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    ver BIGINT      NOT NULL,
    at  DATETIME(6) NOT NULL COMMENT 'UTC'
) ENGINE = InnoDB;
