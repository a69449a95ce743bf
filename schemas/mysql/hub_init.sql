-- edgesync: hub-mode metadata (the tables `edgesync serve` and `edgesync token`
-- use) in database {{db_name}}, provisioned by `init-sync` on the hub.
--
-- Every hub instance in front of this database reads and writes these
-- tables, so the hubs themselves keep no state. MySQL DDL is not
-- transactional: each statement commits on its own and is planned only when
-- its table is missing, so a re-run completes a partial one. Times are UTC.

-- step: tokens | node credentials: the token text is never stored, key_hash is its hex SHA-256
-- tenant and params (a JSON object of text) bind the node's filter values
-- (:tenant, :name). Revoking sets revoked_at; the row stays for the audit.
CREATE TABLE IF NOT EXISTS {{db}}.es_tokens (
    id         VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    node       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tenant     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    params     LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    key_hash   CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(6)  NOT NULL COMMENT 'UTC',
    revoked_at DATETIME(6)  NULL COMMENT 'UTC',
    KEY es_tokens_node (node)
) ENGINE = InnoDB;
;;
-- step: nonces | request nonces seen within the clock window (a repeat is a replay)
-- The primary key makes recording atomic: of two hubs inserting one nonce at
-- once, exactly one succeeds. at: unix seconds; older rows are purged.
CREATE TABLE IF NOT EXISTS {{db}}.es_nonces (
    nonce    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    token_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at       BIGINT      NOT NULL,
    KEY es_nonces_at (at)
) ENGINE = InnoDB;
;;
-- step: audit | the audit log: who pushed or pulled what through a hub, and every refusal
CREATE TABLE IF NOT EXISTS {{db}}.es_audit (
    id       BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at       DATETIME(6)  NOT NULL COMMENT 'UTC',
    node     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    tenant   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    action   VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tbl      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    batch_hi BIGINT       NULL,
    page     LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    `rows`   BIGINT       NOT NULL DEFAULT 0,
    status   INT          NOT NULL,
    outcome  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    remote   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    detail   LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
) ENGINE = InnoDB;
