-- edgesync: shared metadata for the synced tables of SQL Server schema {{schema_name}}.
--
-- Where it lives: edgesync keeps its shared metadata in the schema of the
-- tables it serves (dbo for unqualified table names), so a DBA finds it next
-- to the data and grants on that schema cover it. Tables in two schemas get
-- two independent sets.
--
-- Versions are rowversions: the database-wide counter SQL Server bumps on
-- every insert and update of a row that has a rowversion column. Pulls are
-- commit-safe because they never move past MIN_ACTIVE_ROWVERSION(), the
-- smallest rowversion still held by an open transaction.
--
-- Each statement below runs only when its object is missing (init-sync checks
-- the catalog first), and all of them run in one transaction. Text columns
-- edgesync adds use a binary collation, so node ids and keys compare exactly
-- whatever the database's default collation is.

-- step: nodes | per node and table, the highest edge sequence applied (exactly-once push)
-- `hi` is updated in the same transaction as the pushed rows; a change at or
-- below it is a replay and is answered, not applied again.
CREATE TABLE {{schema}}.es_nodes (
    node         nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
    tbl          nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    hi           bigint        NOT NULL CONSTRAINT es_nodes_hi_df DEFAULT 0,
    last_push_at datetime2(7)  NULL,
    CONSTRAINT es_nodes_pk PRIMARY KEY NONCLUSTERED (node, tbl)
);
;;
-- step: tombstones | hard deletes of synced rows, kept so edges learn about them
-- k: the row's key as a JSON array of text (decimals never pass through a
-- float), at most 500 characters. es_ver: a rowversion, from the same
-- counter as the rows' versions.
CREATE TABLE {{schema}}.es_tombstones (
    tbl       nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    k         nvarchar(500) COLLATE Latin1_General_100_BIN2 NOT NULL,
    es_ver    rowversion    NOT NULL,
    es_hlc    bigint        NOT NULL CONSTRAINT es_tombstones_hlc_df DEFAULT 0,
    es_origin nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq   bigint        NULL,
    CONSTRAINT es_tombstones_pk PRIMARY KEY NONCLUSTERED (tbl, k)
);
;;
-- step: tombstones_ver | index for pulling the tombstones written after a watermark
CREATE INDEX es_tombstones_ver ON {{schema}}.es_tombstones (tbl, es_ver);
;;
-- step: conflicts | the conflict log (every conflict, however resolved; manual ones stay open)
-- base_json/local_json/central_json/result_json: JSON lists of [column, value].
-- open: a manual conflict waiting for `edgesync conflicts resolve`;
-- resolved_at: when it was settled (= at when the policy decided it); kept:
-- the side `conflicts resolve` kept. Times are UTC. Settled entries older
-- than sync.conflict_retention are purged.
CREATE TABLE {{schema}}.es_conflicts (
    id           bigint IDENTITY(1, 1) NOT NULL CONSTRAINT es_conflicts_pk PRIMARY KEY,
    tbl          nvarchar(300) NOT NULL,
    key_json     nvarchar(max) NOT NULL,
    node         nvarchar(256) NOT NULL,
    strategy     nvarchar(32)  NOT NULL,
    base_ver     bigint        NULL,
    base_json    nvarchar(max) NULL,
    local_json   nvarchar(max) NULL,
    central_json nvarchar(max) NULL,
    result_json  nvarchar(max) NULL,
    local_hlc    bigint        NOT NULL,
    central_hlc  bigint        NOT NULL,
    [at]         datetime2(7)  NOT NULL CONSTRAINT es_conflicts_at_df DEFAULT SYSUTCDATETIME(),
    [open]       bit           NOT NULL CONSTRAINT es_conflicts_open_df DEFAULT 0,
    resolved_at  datetime2(7)  NULL,
    kept         nvarchar(16)  NULL
);
