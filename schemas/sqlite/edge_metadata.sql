-- edgesync: metadata tables of an edge SQLite file.
--
-- Rendered by the edgesync SQLite adapter (adapters/sqlite/src/edge/provision.rs).
-- {{node}} is this file's node id as a string literal. Statements are separated
-- by lines holding only ";;" and all run in ONE transaction (BEGIN IMMEDIATE).
-- Every statement is idempotent (IF NOT EXISTS / DO NOTHING).

-- es_ctl: one row of control state shared by every trigger.
--   node           the node id this file belongs to (init-sync refuses another one)
--   seq            last local change sequence handed out; SQLite has one writer,
--                  so a counter bumped inside the writing transaction is commit-safe
--   hlc            last hybrid-logical-clock stamp (ms << 16 | counter)
--   applying       1 only inside edgesync's own apply transactions: triggers
--                  ignore those writes, so nothing edgesync applies is echoed back
--   stash          scratch cell: BEFORE INSERT keeps the conflict base (es_cver)
--                  of a row an INSERT OR REPLACE is about to replace
--   clock_skew_ms  added to the wall clock in HLC ticks (tests inject skew here)
CREATE TABLE IF NOT EXISTS es_ctl (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  node          TEXT    NOT NULL,
  seq           INTEGER NOT NULL DEFAULT 0,
  hlc           INTEGER NOT NULL DEFAULT 0,
  applying      INTEGER NOT NULL DEFAULT 0,
  stash         INTEGER,
  clock_skew_ms INTEGER NOT NULL DEFAULT 0
);
;;
INSERT INTO es_ctl (id, node) VALUES (1, {{node}}) ON CONFLICT (id) DO NOTHING;
;;
-- es_state: per synced table, the push watermark (every local sequence at or
-- below it has been acknowledged by the central), the opaque pull token stored
-- with each applied pull page, and what `edgesync status` shows.
CREATE TABLE IF NOT EXISTS es_state (
  tbl           TEXT    PRIMARY KEY,
  push_wm       INTEGER NOT NULL DEFAULT 0,
  pull_token    TEXT,
  pull_done     INTEGER NOT NULL DEFAULT 0,
  last_push_at  TEXT,
  last_pull_at  TEXT,
  last_error    TEXT,
  last_error_at TEXT
);
;;
-- es_tombstones: hard deletes (and the old key of a key-changing update)
-- waiting to be pushed. key is a JSON array of the key values; es_ver is the
-- local sequence of the delete; es_cver the central version the row was last
-- synced at (the conflict base). Rows are removed once the push is acknowledged.
CREATE TABLE IF NOT EXISTS es_tombstones (
  tbl     TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  es_ver  INTEGER NOT NULL,
  es_hlc  INTEGER NOT NULL,
  es_cver INTEGER,
  PRIMARY KEY (tbl, key)
);
;;
CREATE INDEX IF NOT EXISTS es_tombstones_ver ON es_tombstones (tbl, es_ver);
;;
-- es_base: the conflict base of rows changed locally since they were last
-- synced: their values as of central version cver, captured by the triggers
-- on the first local UPDATE or DELETE of a clean row (es_ver <= push_wm, synced
-- at least once). key is the same JSON array of the key values as in
-- es_tombstones; row is a JSON array of the synced column values in mapping
-- order (bytes as hex, floats as 17-digit text). Pushes send it along, so the
-- central can merge per column (field-merge) and log the base of every
-- conflict. Removed once the central has acknowledged the row; plain INSERTs
-- never touch it.
CREATE TABLE IF NOT EXISTS es_base (
  tbl   TEXT    NOT NULL,
  key   TEXT    NOT NULL,
  cver  INTEGER NOT NULL,
  row   TEXT    NOT NULL,
  PRIMARY KEY (tbl, key)
);
