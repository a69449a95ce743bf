-- edgesync: remove the hub-mode metadata (`deinit-sync` for all tables): the
-- audit log, the nonces and the node tokens.

-- step: audit | drop the audit log
DROP TABLE IF EXISTS es_audit;
;;
-- step: nonces | drop the request nonces
DROP TABLE IF EXISTS es_nonces;
;;
-- step: tokens | drop the node tokens
DROP TABLE IF EXISTS es_tokens;
