-- edgesync: remove the hub-mode metadata of a SQLite central (deinit-sync of
-- every table): node tokens, nonces and the audit log.
DROP TABLE IF EXISTS es_audit;
;;
DROP TABLE IF EXISTS es_nonces;
;;
DROP TABLE IF EXISTS es_tokens;
