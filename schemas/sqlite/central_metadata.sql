-- edgesync: metadata tables of a SQLite file used as the central database
-- (central.url = "sqlite://..."). Rendered by adapters/sqlite/src/central/provision.rs;
-- statements separated by ";;" lines run in ONE transaction; all idempotent.

-- es_ctl: one row.
--   seq       the central version counter: every write to a synced table
--             (edge push or central application) takes the next value, inside
--             its write transaction; SQLite has one writer, so "every version
--             above a pull token" is exactly what a pull must deliver
--   hlc       last hybrid-logical-clock stamp
--   applying  1 only inside edgesync's push transaction, which stamps rows
--             itself; the triggers below then stay out of the way
--   stash, clock_skew_ms  as on edges (scratch cell; test clock injection)
CREATE TABLE IF NOT EXISTS es_ctl (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  seq           INTEGER NOT NULL DEFAULT 0,
  hlc           INTEGER NOT NULL DEFAULT 0,
  applying      INTEGER NOT NULL DEFAULT 0,
  stash         INTEGER,
  clock_skew_ms INTEGER NOT NULL DEFAULT 0
);
;;
INSERT INTO es_ctl (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
;;
-- es_nodes: per node and table, the highest edge sequence applied (hi),
-- written in the same transaction as the pushed rows. A pushed change at or
-- below hi is a replay and is never applied twice.
CREATE TABLE IF NOT EXISTS es_nodes (
  node         TEXT    NOT NULL,
  tbl          TEXT    NOT NULL,
  hi           INTEGER NOT NULL DEFAULT 0,
  last_push_at TEXT,
  PRIMARY KEY (node, tbl)
);
;;
-- es_tombstones: hard deletes, so pulls can deliver them. key is a JSON array
-- of the key values; es_ver the central version of the delete; es_origin and
-- es_oseq the node and edge sequence that pushed it (NULL: a central write).
CREATE TABLE IF NOT EXISTS es_tombstones (
  tbl       TEXT    NOT NULL,
  key       TEXT    NOT NULL,
  es_ver    INTEGER NOT NULL,
  es_hlc    INTEGER NOT NULL,
  es_origin TEXT,
  es_oseq   INTEGER,
  PRIMARY KEY (tbl, key)
);
;;
CREATE INDEX IF NOT EXISTS es_tombstones_ver ON es_tombstones (tbl, es_ver);
;;
-- es_conflicts: the conflict log. Every conflict, however resolved, with the
-- base version and values, the edge's, the central's and the resulting values
-- (JSON lists of [column, value]) and both clock stamps. open = 1 while a
-- manual conflict waits for `edgesync conflicts resolve`; resolved_at is when
-- it was settled (= at for a conflict the policy decided) and kept which side
-- `conflicts resolve` kept. Settled entries older than sync.conflict_retention
-- are purged.
CREATE TABLE IF NOT EXISTS es_conflicts (
  id           INTEGER PRIMARY KEY,
  tbl          TEXT    NOT NULL,
  key_json     TEXT    NOT NULL,
  node         TEXT    NOT NULL,
  strategy     TEXT    NOT NULL,
  base_ver     INTEGER,
  base_json    TEXT,
  local_json   TEXT,
  central_json TEXT,
  result_json  TEXT,
  local_hlc    INTEGER NOT NULL,
  central_hlc  INTEGER NOT NULL,
  at           TEXT    NOT NULL,
  open         INTEGER NOT NULL DEFAULT 0,
  resolved_at  TEXT,
  kept         TEXT
);

;;
-- es_pulls: per node and table, where its last pull stood (ver: every
-- version at or below it is on the edge) and when it came. A retention purge
-- (sync.retention) never removes a tombstone above the lowest ver of the
-- nodes still active.
CREATE TABLE IF NOT EXISTS es_pulls (
  node TEXT    NOT NULL,
  tbl  TEXT    NOT NULL,
  ver  INTEGER NOT NULL,
  at   TEXT    NOT NULL,
  PRIMARY KEY (node, tbl)
);
;;
-- es_purged: per table, the highest tombstone version a retention purge
-- removed. A pull continuing from below it may have missed a delete: it is
-- refused, and the edge takes a fresh snapshot of the table.
CREATE TABLE IF NOT EXISTS es_purged (
  tbl TEXT    PRIMARY KEY,
  ver INTEGER NOT NULL,
  at  TEXT    NOT NULL
);
