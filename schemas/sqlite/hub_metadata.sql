-- edgesync: hub-mode metadata of a SQLite central (the tables `edgesync serve`
-- and `edgesync token` use). Rendered by adapters/sqlite/src/central/hub.rs;
-- statements separated by ";;" lines run in ONE transaction; all idempotent.
-- Every hub instance in front of this central reads and writes these tables,
-- so the hubs themselves keep no state.

-- es_tokens: node credentials (`edgesync token create/revoke`). The token text
-- is never stored: key_hash is its hex SHA-256, the key requests are signed
-- with. tenant and params_json (a JSON object) bind the node's filter values.
CREATE TABLE IF NOT EXISTS es_tokens (
  id          TEXT    PRIMARY KEY,
  node        TEXT    NOT NULL,
  tenant      TEXT,
  params_json TEXT    NOT NULL DEFAULT '{}',
  key_hash    TEXT    NOT NULL,
  created_at  TEXT    NOT NULL,
  revoked_at  TEXT
);
;;
CREATE INDEX IF NOT EXISTS es_tokens_node ON es_tokens (node);
;;
-- es_nonces: request nonces seen within the clock window; a nonce seen twice
-- is a replay and is refused. `at` is unix seconds; older rows are purged.
CREATE TABLE IF NOT EXISTS es_nonces (
  nonce    TEXT    PRIMARY KEY,
  token_id TEXT    NOT NULL,
  at       INTEGER NOT NULL
);
;;
CREATE INDEX IF NOT EXISTS es_nonces_at ON es_nonces (at);
;;
-- es_audit: who pushed or pulled what through a hub, and every refusal.
CREATE TABLE IF NOT EXISTS es_audit (
  id       INTEGER PRIMARY KEY,
  at       TEXT    NOT NULL,
  node     TEXT,
  tenant   TEXT,
  action   TEXT    NOT NULL,
  tbl      TEXT,
  batch_hi INTEGER,
  page     TEXT,
  rows     INTEGER NOT NULL DEFAULT 0,
  status   INTEGER NOT NULL,
  outcome  TEXT    NOT NULL,
  remote   TEXT,
  detail   TEXT    NOT NULL DEFAULT ''
);
