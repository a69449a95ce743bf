-- edgesync: shared metadata for the synced tables of PostgreSQL schema {{schema_name}}.
--
-- Where it lives: edgesync keeps its shared metadata in the schema of the
-- tables it serves (`public` for unqualified table names), so a DBA finds it
-- next to the data and grants on that schema cover it. Tables in two schemas
-- get two independent sets; nothing is shared across schemas.
--
-- Each statement below runs only when its object is missing (`init-sync` checks
-- the catalog first), and all of them run in one transaction.

-- step: sequence | central version counter for the synced tables of schema {{schema_name}}
-- Every write to a synced row (and every tombstone) takes the next value, so a
-- row's version only grows. Versions say "newer than", never "committed
-- before": commit order is tracked by es_txid, see pull.
CREATE SEQUENCE IF NOT EXISTS {{schema}}.es_version AS bigint;
;;
-- step: nodes | per node and table, the highest edge sequence applied (exactly-once push)
-- `hi` is updated in the same transaction as the pushed rows; a change at or
-- below it is a replay and is answered, not applied again.
CREATE TABLE IF NOT EXISTS {{schema}}.es_nodes (
    node         text        NOT NULL,
    tbl          text        NOT NULL,
    hi           bigint      NOT NULL DEFAULT 0,
    last_push_at timestamptz,
    PRIMARY KEY (node, tbl)
);
;;
-- step: tombstones | hard deletes of synced rows, kept so edges learn about them
-- key: the row's key as a JSON array of text (decimals never pass through a
-- float). es_txid: the deleting transaction, for commit-safe pulls.
CREATE TABLE IF NOT EXISTS {{schema}}.es_tombstones (
    tbl       text   NOT NULL,
    key       jsonb  NOT NULL,
    es_ver    bigint NOT NULL,
    es_txid   bigint NOT NULL,
    es_hlc    bigint NOT NULL DEFAULT 0,
    es_origin text,
    es_oseq   bigint,
    PRIMARY KEY (tbl, key)
);
;;
-- step: tombstones_pull | index for pulling the tombstones written after a snapshot
-- A pull pages through a table's new tombstones in (es_txid, key) order, as
-- through its rows (see init_table.sql), one range scan of this index a page.
-- It also serves the retention purge (tbl, es_txid).
CREATE INDEX IF NOT EXISTS es_tombstones_pull ON {{schema}}.es_tombstones (tbl, es_txid, key);
;;
-- step: tombstones_txid_old | drop the (tbl, es_txid) index an older edgesync created (es_tombstones_pull above replaces it)
DROP INDEX IF EXISTS {{schema}}.es_tombstones_txid;
;;
-- step: conflicts | the conflict log (every conflict, however resolved; manual ones stay open)
-- base_json/local_json/central_json/result_json: JSON lists of [column, value].
-- open: a manual conflict waiting for `edgesync conflicts resolve`;
-- resolved_at: when it was settled (= at when the policy decided it); kept:
-- the side `conflicts resolve` kept. Settled entries older than
-- sync.conflict_retention are purged.
CREATE TABLE IF NOT EXISTS {{schema}}.es_conflicts (
    id           bigserial   PRIMARY KEY,
    tbl          text        NOT NULL,
    key_json     jsonb       NOT NULL,
    node         text        NOT NULL,
    strategy     text        NOT NULL,
    base_ver     bigint,
    base_json    jsonb,
    local_json   jsonb,
    central_json jsonb,
    result_json  jsonb,
    local_hlc    bigint      NOT NULL,
    central_hlc  bigint      NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    open         boolean     NOT NULL DEFAULT false,
    resolved_at  timestamptz,
    kept         text
);
;;
-- step: conflicts_columns | conflict-log columns a log created by an older edgesync lacks
ALTER TABLE {{schema}}.es_conflicts
    ADD COLUMN IF NOT EXISTS base_json   jsonb,
    ADD COLUMN IF NOT EXISTS resolved_at timestamptz,
    ADD COLUMN IF NOT EXISTS kept        text;
;;
-- step: pulls | per node and table, where its last pull stood and when (sync.retention)
-- snap: the node's pull snapshot (NULL during a full pass): every transaction
-- visible in it is on the edge. A retention purge removes only tombstones
-- that every node still active has seen.
CREATE TABLE IF NOT EXISTS {{schema}}.es_pulls (
    node text        NOT NULL,
    tbl  text        NOT NULL,
    snap text,
    at   timestamptz NOT NULL,
    PRIMARY KEY (node, tbl)
);
;;
-- step: purged | per table, the highest deleting transaction a retention purge removed
-- A pull whose snapshot does not see it may have missed a delete: it is
-- refused and the edge takes a fresh snapshot of the table.
CREATE TABLE IF NOT EXISTS {{schema}}.es_purged (
    tbl  text        PRIMARY KEY,
    txid bigint      NOT NULL,
    at   timestamptz NOT NULL
);
