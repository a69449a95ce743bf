-- edgesync: remove the hub-mode metadata in database {{db_name}} (`deinit-sync`
-- for all tables): the audit log, the nonces and the node tokens. Each
-- statement commits on its own and runs only when its table exists.

-- step: audit | drop the audit log
DROP TABLE IF EXISTS {{db}}.es_audit;
;;
-- step: nonces | drop the request nonces
DROP TABLE IF EXISTS {{db}}.es_nonces;
;;
-- step: tokens | drop the node tokens
DROP TABLE IF EXISTS {{db}}.es_tokens;
