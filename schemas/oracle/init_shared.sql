-- edgesync: shared metadata for the synced tables of Oracle schema {{owner_name}}.
--
-- Where it lives: edgesync keeps its shared metadata in the schema that owns
-- the tables it serves (the connecting user's current schema for unqualified
-- table names). Object names stay within 30 bytes.
--
-- How pulls stay commit-safe: every write stamps its row with a version from
-- the es_version sequence and with es_scn, the system change number at the
-- time of the write, read *after* the writing transaction has registered
-- itself (so its start SCN, in V$TRANSACTION, is never above the stamp). A
-- pull pass never moves its watermark past the start SCN of the oldest open
-- transaction (es_sync.pull_bound), so a transaction that writes early and
-- commits late is delivered by the next pass. No gap timeout, no wall clock.
--
-- Grants this needs, given directly to the schema owner (not through a role:
-- definer's-rights PL/SQL does not see role grants):
--   GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO <owner>;
--   GRANT SELECT ON SYS.V_$TRANSACTION TO <owner>;
-- and, when edgesync connects as another user, EXECUTE on <owner>.es_sync
-- plus the usual SELECT/INSERT/UPDATE/DELETE on the synced and es_ tables.
-- On RAC, use GV$TRANSACTION in es_sync.pull_bound.
--
-- Oracle DDL commits by itself: init-sync runs one statement at a time, each
-- only when its object is missing or out of date, so re-running it completes
-- a partial run.

-- step: sequence | central version counter for the synced tables of schema {{owner_name}}
-- ORDER: versions increase across RAC instances too.
CREATE SEQUENCE {{owner}}.es_version ORDER NOCYCLE
;;
-- step: package | helper package es_sync: the apply flag, HLC stamps, write SCNs, the pull bound
CREATE OR REPLACE PACKAGE {{owner}}.es_sync AUTHID DEFINER AS
    /* edgesync {{fingerprint}} */
    -- 1 in edgesync's own apply sessions (client info 'edgesync:applying').
    FUNCTION applying RETURN NUMBER;
    -- Wall-clock milliseconds since 1970 shifted left 16 bits (an HLC stamp).
    FUNCTION now_hlc RETURN NUMBER;
    -- The SCN to stamp a write with; registers the transaction first.
    FUNCTION write_scn RETURN NUMBER;
    -- Up to where a pull may move its watermark.
    FUNCTION pull_bound RETURN NUMBER;
END es_sync;
;;
-- step: package_body | body of es_sync
CREATE OR REPLACE PACKAGE BODY {{owner}}.es_sync AS
    /* edgesync {{fingerprint}} */
    FUNCTION applying RETURN NUMBER IS
    BEGIN
        IF SYS_CONTEXT('USERENV', 'CLIENT_INFO') = 'edgesync:applying' THEN
            RETURN 1;
        END IF;
        RETURN 0;
    END applying;

    FUNCTION now_hlc RETURN NUMBER IS
        d INTERVAL DAY(9) TO SECOND(9);
    BEGIN
        d := SYS_EXTRACT_UTC(SYSTIMESTAMP) - TIMESTAMP '1970-01-01 00:00:00';
        RETURN (EXTRACT(DAY FROM d) * 86400000 + EXTRACT(HOUR FROM d) * 3600000
                + EXTRACT(MINUTE FROM d) * 60000 + TRUNC(EXTRACT(SECOND FROM d) * 1000)) * 65536;
    END now_hlc;

    FUNCTION write_scn RETURN NUMBER IS
        tx VARCHAR2(64);
    BEGIN
        -- Make sure this transaction is in V$TRANSACTION (with its start
        -- SCN) before the stamp is read.
        tx := DBMS_TRANSACTION.LOCAL_TRANSACTION_ID(TRUE);
        RETURN DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER;
    END write_scn;

    FUNCTION pull_bound RETURN NUMBER IS
        now_scn NUMBER;
        oldest NUMBER;
    BEGIN
        -- The SCN first, then the open transactions: a transaction that
        -- registers after this read stamps its writes above now_scn.
        now_scn := DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER;
        SELECT MIN(start_scn) INTO oldest FROM v$transaction;
        RETURN LEAST(now_scn, NVL(oldest, now_scn));
    END pull_bound;
END es_sync;
;;
-- step: nodes | per node and table, the highest edge sequence applied (exactly-once push)
CREATE TABLE {{owner}}.es_nodes (
    node         NVARCHAR2(256) NOT NULL,
    tbl          NVARCHAR2(300) NOT NULL,
    hi           NUMBER(19) DEFAULT 0 NOT NULL,
    last_push_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT es_nodes_pk PRIMARY KEY (node, tbl)
)
;;
-- step: tombstones | hard deletes of synced rows, kept so edges learn about them
-- k: the row's key as a JSON array of text. es_ver, es_scn: stamped by the
-- es_tombstones_stamp trigger, like rows.
CREATE TABLE {{owner}}.es_tombstones (
    tbl       NVARCHAR2(300)  NOT NULL,
    k         NVARCHAR2(1000) NOT NULL,
    es_ver    NUMBER(19) DEFAULT 0 NOT NULL,
    es_scn    NUMBER DEFAULT 0 NOT NULL,
    es_hlc    NUMBER(19) DEFAULT 0 NOT NULL,
    es_origin NVARCHAR2(256),
    es_oseq   NUMBER(19),
    CONSTRAINT es_tombstones_pk PRIMARY KEY (tbl, k)
)
;;
-- step: tombstones_scn | index for pulling the tombstones written after a watermark
CREATE INDEX {{owner}}.es_tombstones_scn ON {{owner}}.es_tombstones (tbl, es_scn)
;;
-- step: tombstones_trigger | stamp every tombstone with a version and its write SCN
CREATE OR REPLACE TRIGGER {{owner}}.es_tombstones_stamp
BEFORE INSERT OR UPDATE ON {{owner}}.es_tombstones FOR EACH ROW
BEGIN
    /* edgesync {{fingerprint}} */
    :new.es_ver := {{owner}}.es_version.NEXTVAL;
    :new.es_scn := {{owner}}.es_sync.write_scn;
END;
;;
-- step: conflicts | the conflict log (every conflict, however resolved; manual ones stay open)
-- base_json/local_json/central_json/result_json: JSON lists of [column, value].
-- is_open: a manual conflict waiting for `edgesync conflicts resolve`;
-- resolved_at: when it was settled (= detected_at when the policy decided
-- it); kept: the side `conflicts resolve` kept.
CREATE TABLE {{owner}}.es_conflicts (
    id           NUMBER(19) GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tbl          NVARCHAR2(300) NOT NULL,
    key_json     NCLOB NOT NULL,
    node         NVARCHAR2(256) NOT NULL,
    strategy     VARCHAR2(32) NOT NULL,
    base_ver     NUMBER(19),
    base_json    NCLOB,
    local_json   NCLOB,
    central_json NCLOB,
    result_json  NCLOB,
    local_hlc    NUMBER(19) NOT NULL,
    central_hlc  NUMBER(19) NOT NULL,
    detected_at  TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
    is_open      NUMBER(1) DEFAULT 0 NOT NULL,
    resolved_at  TIMESTAMP WITH TIME ZONE,
    kept         VARCHAR2(16)
)
