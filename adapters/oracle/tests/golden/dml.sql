-- stage keys (array bind)
INSERT INTO "SALES"."ES_STG_SALES_ORDER_LINES" (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1) VALUES (:1, :2, :3, :4, :5, :6, :7, :8)
/

-- stage rows (array bind)
INSERT INTO "SALES"."ES_STG_SALES_ORDER_LINES" (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10, TO_NUMBER(:11), :12, :13, :14, :15, :16, :17, :18)
/

-- lock current rows
SELECT s.es_ord, t."ORDER_ID", t."LINE_NO", t."FLAG", t."RATIO", t."PRICE", t."NOTE", t."BODY", t."PAYLOAD", t."CREATED", t."UPDATED_TZ", t."REF_ID", t."DOC", t.es_ver, t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq
  FROM "SALES"."ES_STG_SALES_ORDER_LINES" s JOIN "SALES"."ORDER_LINES" t ON t."ORDER_ID" = s.a0 AND t."LINE_NO" = s.a1
   FOR UPDATE OF t.es_ver
/

-- lock tombstones
SELECT s.es_ord, ts.es_ver, ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM "SALES"."ES_STG_SALES_ORDER_LINES" s JOIN "SALES".es_tombstones ts ON ts.tbl = :1 AND ts.k = TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a1), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']')
   FOR UPDATE OF ts.es_ver
/

-- update existing rows
MERGE INTO "SALES"."ORDER_LINES" t
USING (SELECT * FROM "SALES"."ES_STG_SALES_ORDER_LINES" WHERE es_act = 1) s
   ON (t."ORDER_ID" = s.a0 AND t."LINE_NO" = s.a1)
 WHEN MATCHED THEN UPDATE SET t."FLAG" = CASE WHEN s.es_hv = 1 THEN s.a2 ELSE t."FLAG" END, t."RATIO" = CASE WHEN s.es_hv = 1 THEN s.a3 ELSE t."RATIO" END, t."PRICE" = CASE WHEN s.es_hv = 1 THEN s.a4 ELSE t."PRICE" END, t."NOTE" = CASE WHEN s.es_hv = 1 THEN s.a5 ELSE t."NOTE" END, t."BODY" = CASE WHEN s.es_hv = 1 THEN s.a6 ELSE t."BODY" END, t."PAYLOAD" = CASE WHEN s.es_hv = 1 THEN s.a7 ELSE t."PAYLOAD" END, t."CREATED" = CASE WHEN s.es_hv = 1 THEN s.a8 ELSE t."CREATED" END, t."UPDATED_TZ" = CASE WHEN s.es_hv = 1 THEN s.a9 ELSE t."UPDATED_TZ" END, t."REF_ID" = CASE WHEN s.es_hv = 1 THEN s.a10 ELSE t."REF_ID" END, t."DOC" = CASE WHEN s.es_hv = 1 THEN s.a11 ELSE t."DOC" END, t.es_deleted = s.es_del, t.es_origin = :1, t.es_oseq = s.es_oseq, t.es_hlc = s.es_hlc
/

-- insert new rows
INSERT INTO "SALES"."ORDER_LINES" ("ORDER_ID", "LINE_NO", "FLAG", "RATIO", "PRICE", "NOTE", "BODY", "PAYLOAD", "CREATED", "UPDATED_TZ", "REF_ID", "DOC", es_deleted, es_origin, es_oseq, es_hlc)
SELECT s.a0, s.a1, s.a2, s.a3, s.a4, s.a5, s.a6, s.a7, s.a8, s.a9, s.a10, s.a11, s.es_del, :1, s.es_oseq, s.es_hlc FROM "SALES"."ES_STG_SALES_ORDER_LINES" s WHERE s.es_act = 2
/

-- hard delete rows
DELETE FROM "SALES"."ORDER_LINES" t WHERE EXISTS (SELECT 1 FROM "SALES"."ES_STG_SALES_ORDER_LINES" s WHERE s.es_act = 3 AND t."ORDER_ID" = s.a0 AND t."LINE_NO" = s.a1)
/

-- write tombstones of hard deletes
MERGE INTO "SALES".es_tombstones ts
USING (SELECT TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a1), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']') AS k, s.es_oseq, s.es_hlc FROM "SALES"."ES_STG_SALES_ORDER_LINES" s WHERE s.es_act = 3) d
   ON (ts.tbl = :1 AND ts.k = d.k)
 WHEN MATCHED THEN UPDATE SET ts.es_hlc = d.es_hlc, ts.es_origin = :2, ts.es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (:3, d.k, d.es_hlc, :4, d.es_oseq)
/

-- read the new versions
SELECT s.es_ord, t.es_ver FROM "SALES"."ES_STG_SALES_ORDER_LINES" s JOIN "SALES"."ORDER_LINES" t ON t."ORDER_ID" = s.a0 AND t."LINE_NO" = s.a1 WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, ts.es_ver FROM "SALES"."ES_STG_SALES_ORDER_LINES" s JOIN "SALES".es_tombstones ts ON ts.tbl = :1 AND ts.k = TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a1), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']') WHERE s.es_act = 3
/

-- log conflicts (array bind)
INSERT INTO "SALES".es_conflicts (tbl, key_json, node, strategy, base_ver, base_json, local_json,
                            central_json, result_json, local_hlc, central_hlc, is_open, resolved_at)
         VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10, :11, :12,
                 CASE WHEN :13 = 1 THEN NULL ELSE SYSTIMESTAMP END)
/

-- read the pull bound
SELECT "SALES".es_sync.pull_bound FROM dual
/

-- pull rows, initial load
SELECT t."ORDER_ID", t."LINE_NO", t."FLAG", t."RATIO", t."PRICE", t."NOTE", t."BODY", t."PAYLOAD", t."CREATED", t."UPDATED_TZ", t."REF_ID", t."DOC", t.es_ver, t.es_deleted, t.es_hlc
  FROM "SALES"."ORDER_LINES" t
 WHERE (t.es_origin IS NULL OR t.es_origin <> :1)
 ORDER BY t."ORDER_ID", t."LINE_NO"
 FETCH FIRST :2 ROWS ONLY
/

-- pull rows after a watermark and a cursor
SELECT t."ORDER_ID", t."LINE_NO", t."FLAG", t."RATIO", t."PRICE", t."NOTE", t."BODY", t."PAYLOAD", t."CREATED", t."UPDATED_TZ", t."REF_ID", t."DOC", t.es_ver, t.es_deleted, t.es_hlc
  FROM "SALES"."ORDER_LINES" t
 WHERE (t.es_origin IS NULL OR t.es_origin <> :1) AND t.es_scn >= :2 AND ((t."ORDER_ID" > :3) OR (t."ORDER_ID" = :4 AND t."LINE_NO" > :5))
 ORDER BY t."ORDER_ID", t."LINE_NO"
 FETCH FIRST :6 ROWS ONLY
/

-- pull tombstones, initial load
SELECT ts.k, ts.es_ver, ts.es_hlc
  FROM "SALES".es_tombstones ts
 WHERE ts.tbl = :1 AND (ts.es_origin IS NULL OR ts.es_origin <> :2)
 ORDER BY ts.k
 FETCH FIRST :3 ROWS ONLY
/

-- pull tombstones after a watermark and a cursor
SELECT ts.k, ts.es_ver, ts.es_hlc
  FROM "SALES".es_tombstones ts
 WHERE ts.tbl = :1 AND (ts.es_origin IS NULL OR ts.es_origin <> :2) AND ts.es_scn >= :3 AND ts.k > :4
 ORDER BY ts.k
 FETCH FIRST :5 ROWS ONLY
/

-- conflicts resolve --keep local
MERGE INTO "SALES"."ORDER_LINES" t
USING (SELECT :1 AS a0, :2 AS a1, :3 AS a2, :4 AS a3, TO_NUMBER(:5) AS a4, :6 AS a5, :7 AS a6, :8 AS a7, :9 AS a8, :10 AS a9, :11 AS a10, :12 AS a11 FROM dual) s
   ON (t."ORDER_ID" = s.a0 AND t."LINE_NO" = s.a1)
 WHEN MATCHED THEN UPDATE SET t."FLAG" = s.a2, t."RATIO" = s.a3, t."PRICE" = s.a4, t."NOTE" = s.a5, t."BODY" = s.a6, t."PAYLOAD" = s.a7, t."CREATED" = s.a8, t."UPDATED_TZ" = s.a9, t."REF_ID" = s.a10, t."DOC" = s.a11, t.es_deleted = 0
 WHEN NOT MATCHED THEN INSERT ("ORDER_ID", "LINE_NO", "FLAG", "RATIO", "PRICE", "NOTE", "BODY", "PAYLOAD", "CREATED", "UPDATED_TZ", "REF_ID", "DOC") VALUES (s.a0, s.a1, s.a2, s.a3, s.a4, s.a5, s.a6, s.a7, s.a8, s.a9, s.a10, s.a11)
/

-- stage keys (array bind)
INSERT INTO "APP"."ES_STG_APP_DEVICE_EVE_24662152" (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, TO_NUMBER(:10))
/

-- stage rows (array bind)
INSERT INTO "APP"."ES_STG_APP_DEVICE_EVE_24662152" (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3, a4) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, TO_NUMBER(:10), :11)
/

-- lock current rows
SELECT s.es_ord, t."REGION", t."DEVICE", t."AT", t."AMOUNT", t."READING", t.es_ver, t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq
  FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s JOIN "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t ON t."REGION" = s.a0 AND t."DEVICE" = s.a1 AND t."AT" = s.a2 AND t."AMOUNT" = s.a3
   FOR UPDATE OF t.es_ver
/

-- lock tombstones
SELECT s.es_ord, ts.es_ver, ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s JOIN "APP".es_tombstones ts ON ts.tbl = :1 AND ts.k = TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_NCHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(LOWER(RAWTOHEX(s.a1)), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(SYS_EXTRACT_UTC(s.a2), 'YYYY-MM-DD HH24:MI:SS.FF9'), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a3, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,'''), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']')
   FOR UPDATE OF ts.es_ver
/

-- update existing rows
MERGE INTO "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t
USING (SELECT * FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" WHERE es_act = 1) s
   ON (t."REGION" = s.a0 AND t."DEVICE" = s.a1 AND t."AT" = s.a2 AND t."AMOUNT" = s.a3)
 WHEN MATCHED THEN UPDATE SET t."READING" = CASE WHEN s.es_hv = 1 THEN s.a4 ELSE t."READING" END, t.es_deleted = s.es_del, t.es_origin = :1, t.es_oseq = s.es_oseq, t.es_hlc = s.es_hlc
/

-- insert new rows
INSERT INTO "APP"."Device_Events_Recorded_At_The_Edge_Gateways" ("REGION", "DEVICE", "AT", "AMOUNT", "READING", es_deleted, es_origin, es_oseq, es_hlc)
SELECT s.a0, s.a1, s.a2, s.a3, s.a4, s.es_del, :1, s.es_oseq, s.es_hlc FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s WHERE s.es_act = 2
/

-- hard delete rows
DELETE FROM "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t WHERE EXISTS (SELECT 1 FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s WHERE s.es_act = 3 AND t."REGION" = s.a0 AND t."DEVICE" = s.a1 AND t."AT" = s.a2 AND t."AMOUNT" = s.a3)
/

-- write tombstones of hard deletes
MERGE INTO "APP".es_tombstones ts
USING (SELECT TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_NCHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(LOWER(RAWTOHEX(s.a1)), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(SYS_EXTRACT_UTC(s.a2), 'YYYY-MM-DD HH24:MI:SS.FF9'), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a3, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,'''), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']') AS k, s.es_oseq, s.es_hlc FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s WHERE s.es_act = 3) d
   ON (ts.tbl = :1 AND ts.k = d.k)
 WHEN MATCHED THEN UPDATE SET ts.es_hlc = d.es_hlc, ts.es_origin = :2, ts.es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (:3, d.k, d.es_hlc, :4, d.es_oseq)
/

-- read the new versions
SELECT s.es_ord, t.es_ver FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s JOIN "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t ON t."REGION" = s.a0 AND t."DEVICE" = s.a1 AND t."AT" = s.a2 AND t."AMOUNT" = s.a3 WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, ts.es_ver FROM "APP"."ES_STG_APP_DEVICE_EVE_24662152" s JOIN "APP".es_tombstones ts ON ts.tbl = :1 AND ts.k = TO_NCHAR('[' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_NCHAR(s.a0), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(LOWER(RAWTOHEX(s.a1)), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(SYS_EXTRACT_UTC(s.a2), 'YYYY-MM-DD HH24:MI:SS.FF9'), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ',' || '"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(TO_CHAR(s.a3, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,'''), '\', '\\'), '"', '\"'), CHR(10), '\n'), CHR(13), '\r'), CHR(9), '\t') || '"' || ']') WHERE s.es_act = 3
/

-- log conflicts (array bind)
INSERT INTO "APP".es_conflicts (tbl, key_json, node, strategy, base_ver, base_json, local_json,
                            central_json, result_json, local_hlc, central_hlc, is_open, resolved_at)
         VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10, :11, :12,
                 CASE WHEN :13 = 1 THEN NULL ELSE SYSTIMESTAMP END)
/

-- read the pull bound
SELECT "APP".es_sync.pull_bound FROM dual
/

-- pull rows, initial load
SELECT t."REGION", t."DEVICE", t."AT", t."AMOUNT", t."READING", t.es_ver, t.es_deleted, t.es_hlc
  FROM "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t
 WHERE (t.es_origin IS NULL OR t.es_origin <> :1)
 ORDER BY t."REGION", t."DEVICE", t."AT", t."AMOUNT"
 FETCH FIRST :2 ROWS ONLY
/

-- pull rows after a watermark and a cursor
SELECT t."REGION", t."DEVICE", t."AT", t."AMOUNT", t."READING", t.es_ver, t.es_deleted, t.es_hlc
  FROM "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t
 WHERE (t.es_origin IS NULL OR t.es_origin <> :1) AND t.es_scn >= :2 AND ((t."REGION" > :3) OR (t."REGION" = :4 AND t."DEVICE" > :5) OR (t."REGION" = :6 AND t."DEVICE" = :7 AND t."AT" > :8) OR (t."REGION" = :9 AND t."DEVICE" = :10 AND t."AT" = :11 AND t."AMOUNT" > :12))
 ORDER BY t."REGION", t."DEVICE", t."AT", t."AMOUNT"
 FETCH FIRST :13 ROWS ONLY
/

-- pull tombstones, initial load
SELECT ts.k, ts.es_ver, ts.es_hlc
  FROM "APP".es_tombstones ts
 WHERE ts.tbl = :1 AND (ts.es_origin IS NULL OR ts.es_origin <> :2)
 ORDER BY ts.k
 FETCH FIRST :3 ROWS ONLY
/

-- pull tombstones after a watermark and a cursor
SELECT ts.k, ts.es_ver, ts.es_hlc
  FROM "APP".es_tombstones ts
 WHERE ts.tbl = :1 AND (ts.es_origin IS NULL OR ts.es_origin <> :2) AND ts.es_scn >= :3 AND ts.k > :4
 ORDER BY ts.k
 FETCH FIRST :5 ROWS ONLY
/

-- conflicts resolve --keep local
MERGE INTO "APP"."Device_Events_Recorded_At_The_Edge_Gateways" t
USING (SELECT :1 AS a0, :2 AS a1, :3 AS a2, TO_NUMBER(:4) AS a3, :5 AS a4 FROM dual) s
   ON (t."REGION" = s.a0 AND t."DEVICE" = s.a1 AND t."AT" = s.a2 AND t."AMOUNT" = s.a3)
 WHEN MATCHED THEN UPDATE SET t."READING" = s.a4, t.es_deleted = 0
 WHEN NOT MATCHED THEN INSERT ("REGION", "DEVICE", "AT", "AMOUNT", "READING") VALUES (s.a0, s.a1, s.a2, s.a3, s.a4)
/

