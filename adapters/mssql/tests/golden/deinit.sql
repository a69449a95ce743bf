-- drop the soft-delete trigger of sales.order]lines
DROP TRIGGER IF EXISTS [sales].[es_trg_s_sales_order_lines];
GO

-- drop the tombstone trigger of sales.order]lines
DROP TRIGGER IF EXISTS [sales].[es_trg_d_sales_order_lines];
GO

-- drop the stamping trigger of sales.order]lines
DROP TRIGGER IF EXISTS [sales].[es_trg_w_sales_order_lines];
GO

-- drop the es_ver index
DROP INDEX IF EXISTS [es_ver_sales_order_lines] ON [sales].[order]]lines];
GO

-- drop the edgesync metadata columns of sales.order]lines (and their defaults)
ALTER TABLE [sales].[order]]lines] DROP CONSTRAINT IF EXISTS [es_df_deleted_sales_order_lines];
ALTER TABLE [sales].[order]]lines] DROP CONSTRAINT IF EXISTS [es_df_hlc_sales_order_lines];
ALTER TABLE [sales].[order]]lines] DROP COLUMN IF EXISTS es_ver, es_deleted, es_hlc, es_origin, es_oseq;
GO

-- drop the tombstone trigger of dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
DROP TRIGGER IF EXISTS [dbo].[es_trg_d_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_2c082118];
GO

-- drop the stamping trigger of dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
DROP TRIGGER IF EXISTS [dbo].[es_trg_w_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_670ef0c3];
GO

-- drop the es_ver index
DROP INDEX IF EXISTS [es_ver_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_d27b9183] ON [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx];
GO

-- drop the edgesync metadata columns of dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx (and their defaults)
ALTER TABLE [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] DROP CONSTRAINT IF EXISTS [es_df_deleted_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_ebb66c78];
ALTER TABLE [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] DROP CONSTRAINT IF EXISTS [es_df_hlc_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_eee3e4b4];
ALTER TABLE [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] DROP COLUMN IF EXISTS es_ver, es_deleted, es_hlc, es_origin, es_oseq;
GO

-- drop the conflict log
DROP TABLE IF EXISTS [sales].es_conflicts;
GO

-- drop the tombstones
DROP TABLE IF EXISTS [sales].es_tombstones;
GO

-- drop the per-node push high-water marks
DROP TABLE IF EXISTS [sales].es_nodes;
GO

-- drop the conflict log
DROP TABLE IF EXISTS [dbo].es_conflicts;
GO

-- drop the tombstones
DROP TABLE IF EXISTS [dbo].es_tombstones;
GO

-- drop the per-node push high-water marks
DROP TABLE IF EXISTS [dbo].es_nodes;
GO

