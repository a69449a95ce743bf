-- edgesync: hub-mode metadata (the tables `edgesync serve` and `edgesync token`
-- use), provisioned by `init-sync` on the hub.
--
-- Where it lives: unqualified, so in the first schema of the edgesync role's
-- search_path (normally `public`); every hub instance in front of this
-- database reads and writes these tables, so the hubs themselves keep no
-- state. Each statement runs only when its object is missing, all of them in
-- one transaction.

-- step: tokens | node credentials: the token text is never stored, key_hash is its hex SHA-256
-- tenant and params bind the node's filter values (:tenant, :name).
CREATE TABLE IF NOT EXISTS es_tokens (
    id         text        PRIMARY KEY,
    node       text        NOT NULL,
    tenant     text,
    params     jsonb       NOT NULL DEFAULT '{}',
    key_hash   text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
;;
-- step: tokens_node | index for revoking a node's tokens
CREATE INDEX IF NOT EXISTS es_tokens_node ON es_tokens (node);
;;
-- step: nonces | request nonces seen within the clock window (a repeat is a replay)
-- at: unix seconds; rows older than the window are purged.
CREATE TABLE IF NOT EXISTS es_nonces (
    nonce    text   PRIMARY KEY,
    token_id text   NOT NULL,
    at       bigint NOT NULL
);
;;
-- step: nonces_at | index for purging old nonces
CREATE INDEX IF NOT EXISTS es_nonces_at ON es_nonces (at);
;;
-- step: audit | the audit log: who pushed or pulled what through a hub, and every refusal
CREATE TABLE IF NOT EXISTS es_audit (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL,
    node     text,
    tenant   text,
    action   text        NOT NULL,
    tbl      text,
    batch_hi bigint,
    page     text,
    rows     bigint      NOT NULL DEFAULT 0,
    status   integer     NOT NULL,
    outcome  text        NOT NULL,
    remote   text,
    detail   text        NOT NULL DEFAULT ''
);
