-- edgesync: es_schema, the column list each table of this edge file syncs
-- (schema evolution: central is the source of truth).
--   tbl          edge table
--   columns      JSON: the synced columns in mapping order (edge name, central
--                name, central type, edge type, nullable); every pushed and
--                pulled row is a list of values in exactly this order
--   key          JSON array of the key's central column names
--   fingerprint  the schema fingerprint of `columns` that push batches and
--                pull pages carry (a mismatch is refused, never applied)
--   refill       JSON array of central column names added to the table whose
--                values are being fetched again for the rows the edge already
--                has (a re-pull of the table); NULL when none
--   changed_at   when the column list last changed (UTC)
CREATE TABLE IF NOT EXISTS es_schema (
  tbl         TEXT PRIMARY KEY,
  columns     TEXT NOT NULL,
  key         TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  refill      TEXT,
  changed_at  TEXT
);
