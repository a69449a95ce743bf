-- drop the tombstone trigger of SALES.ORDER_LINES
DROP TRIGGER "SALES"."ES_TRG_T_SALES_ORDER_LINES"
/

-- drop the stamping trigger of SALES.ORDER_LINES
DROP TRIGGER "SALES"."ES_TRG_S_SALES_ORDER_LINES"
/

-- drop the es_scn index
DROP INDEX "SALES"."ES_SCN_SALES_ORDER_LINES"
/

-- drop the staging table
DROP TABLE "SALES"."ES_STG_SALES_ORDER_LINES" PURGE
/

-- drop the edgesync metadata columns of SALES.ORDER_LINES
ALTER TABLE "SALES"."ORDER_LINES" DROP (es_ver, es_scn, es_deleted, es_hlc, es_origin, es_oseq)
/

-- drop the tombstone trigger of APP.Device_Events_Recorded_At_The_Edge_Gateways
DROP TRIGGER "APP"."ES_TRG_T_APP_DEVICE_E_F438390A"
/

-- drop the stamping trigger of APP.Device_Events_Recorded_At_The_Edge_Gateways
DROP TRIGGER "APP"."ES_TRG_S_APP_DEVICE_E_08BF51EB"
/

-- drop the es_scn index
DROP INDEX "APP"."ES_SCN_APP_DEVICE_EVE_BA5717CE"
/

-- drop the staging table
DROP TABLE "APP"."ES_STG_APP_DEVICE_EVE_24662152" PURGE
/

-- drop the edgesync metadata columns of APP.Device_Events_Recorded_At_The_Edge_Gateways
ALTER TABLE "APP"."Device_Events_Recorded_At_The_Edge_Gateways" DROP (es_ver, es_scn, es_deleted, es_hlc, es_origin, es_oseq)
/

-- drop the conflict log
DROP TABLE "SALES".es_conflicts PURGE
/

-- drop the tombstones (with their trigger and index)
DROP TABLE "SALES".es_tombstones PURGE
/

-- drop the per-node push high-water marks
DROP TABLE "SALES".es_nodes PURGE
/

-- drop the es_sync package
DROP PACKAGE "SALES".es_sync
/

-- drop the central version counter
DROP SEQUENCE "SALES".es_version
/

-- drop the conflict log
DROP TABLE "APP".es_conflicts PURGE
/

-- drop the tombstones (with their trigger and index)
DROP TABLE "APP".es_tombstones PURGE
/

-- drop the per-node push high-water marks
DROP TABLE "APP".es_nodes PURGE
/

-- drop the es_sync package
DROP PACKAGE "APP".es_sync
/

-- drop the central version counter
DROP SEQUENCE "APP".es_version
/

