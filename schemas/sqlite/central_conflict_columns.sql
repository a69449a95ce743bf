-- edgesync: the conflict-log columns added after the first release, for a
-- central provisioned before them (only the missing ones run).
--   base_json    the edge's base row (JSON list of [column, value])
--   resolved_at  when the conflict was settled
--   kept         which side `edgesync conflicts resolve` kept
ALTER TABLE es_conflicts ADD COLUMN base_json TEXT;
;;
ALTER TABLE es_conflicts ADD COLUMN resolved_at TEXT;
;;
ALTER TABLE es_conflicts ADD COLUMN kept TEXT;
