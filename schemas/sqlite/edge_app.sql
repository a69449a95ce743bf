-- edgesync: what edge applications read and write with plain SQL (init-sync).
--
-- Rendered by the edgesync SQLite adapter (adapters/sqlite/src/edge/app.rs).
-- Statements are separated by lines holding only ";;" and are idempotent.
-- None of these tables has triggers: an application writes them directly.

-- es_sync_requests: an application asks for a sync now by inserting a row
-- (tbl NULL = every table of this edge, else one edge table). The running
-- daemon notices the commit within about a second, syncs, and fills in
-- served_at (UTC) and outcome ('ok', or 'error: ...' naming the failing
-- tables). A one-shot `edgesync sync` serves pending requests too. Served
-- requests are deleted after seven days.
CREATE TABLE IF NOT EXISTS es_sync_requests (
  id           INTEGER PRIMARY KEY,
  tbl          TEXT,
  requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ', 'now')),
  served_at    TEXT,
  outcome      TEXT
);
;;
CREATE INDEX IF NOT EXISTS es_sync_requests_open ON es_sync_requests (id) WHERE served_at IS NULL;
;;
-- es_conflicts: the open (parked) conflicts of this node's `manual` tables,
-- copied from the central's conflict log on every sync and removed once the
-- central reports them settled. id is the central conflict id (the one
-- `edgesync conflicts resolve ID` takes); key, local_json, central_json and
-- base_json are JSON objects of edge column name -> value (integers and
-- booleans as JSON numbers/booleans, everything else as its display text,
-- NULL as null); local_json NULL = this edge deleted the row, central_json
-- NULL = deleted or absent on the central, base_json NULL = not known
-- (insert/insert). An application settles one with
--   UPDATE es_conflicts SET choice = 'local' | 'central' WHERE id = ?
-- and the next sync resolves it exactly like `conflicts resolve --keep`;
-- a resolution the central refuses is kept with its error.
-- row_key is edgesync's internal key (the es_tombstones form).
CREATE TABLE IF NOT EXISTS es_conflicts (
  id           INTEGER PRIMARY KEY,
  tbl          TEXT NOT NULL,
  key          TEXT NOT NULL,
  row_key      TEXT NOT NULL,
  local_json   TEXT,
  central_json TEXT,
  base_json    TEXT,
  created_at   TEXT NOT NULL,
  choice       TEXT CHECK (choice IN ('local', 'central')),
  error        TEXT
);
;;
CREATE INDEX IF NOT EXISTS es_conflicts_row ON es_conflicts (tbl, row_key);
;;
-- es_quarantine (see edge/quarantine.rs): created here too, so the status
-- views can count it before the first poison row.
CREATE TABLE IF NOT EXISTS es_quarantine (
  tbl     TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  seq     INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  cver    INTEGER,
  error   TEXT    NOT NULL,
  at      TEXT    NOT NULL,
  PRIMARY KEY (tbl, key)
);
