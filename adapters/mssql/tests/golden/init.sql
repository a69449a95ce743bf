-- per node and table, the highest edge sequence applied (exactly-once push)
CREATE TABLE [sales].es_nodes (
    node         nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
    tbl          nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    hi           bigint        NOT NULL CONSTRAINT es_nodes_hi_df DEFAULT 0,
    last_push_at datetime2(7)  NULL,
    CONSTRAINT es_nodes_pk PRIMARY KEY NONCLUSTERED (node, tbl)
);
GO

-- hard deletes of synced rows, kept so edges learn about them
CREATE TABLE [sales].es_tombstones (
    tbl       nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    k         nvarchar(500) COLLATE Latin1_General_100_BIN2 NOT NULL,
    es_ver    rowversion    NOT NULL,
    es_hlc    bigint        NOT NULL CONSTRAINT es_tombstones_hlc_df DEFAULT 0,
    es_origin nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq   bigint        NULL,
    CONSTRAINT es_tombstones_pk PRIMARY KEY NONCLUSTERED (tbl, k)
);
GO

-- index for pulling the tombstones written after a watermark
CREATE INDEX es_tombstones_ver ON [sales].es_tombstones (tbl, es_ver);
GO

-- the conflict log (every conflict, however resolved; manual ones stay open)
CREATE TABLE [sales].es_conflicts (
    id           bigint IDENTITY(1, 1) NOT NULL CONSTRAINT es_conflicts_pk PRIMARY KEY,
    tbl          nvarchar(300) NOT NULL,
    key_json     nvarchar(max) NOT NULL,
    node         nvarchar(256) NOT NULL,
    strategy     nvarchar(32)  NOT NULL,
    base_ver     bigint        NULL,
    base_json    nvarchar(max) NULL,
    local_json   nvarchar(max) NULL,
    central_json nvarchar(max) NULL,
    result_json  nvarchar(max) NULL,
    local_hlc    bigint        NOT NULL,
    central_hlc  bigint        NOT NULL,
    [at]         datetime2(7)  NOT NULL CONSTRAINT es_conflicts_at_df DEFAULT SYSUTCDATETIME(),
    [open]       bit           NOT NULL CONSTRAINT es_conflicts_open_df DEFAULT 0,
    resolved_at  datetime2(7)  NULL,
    kept         nvarchar(16)  NULL
);
GO

-- per node and table, the highest edge sequence applied (exactly-once push)
CREATE TABLE [dbo].es_nodes (
    node         nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
    tbl          nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    hi           bigint        NOT NULL CONSTRAINT es_nodes_hi_df DEFAULT 0,
    last_push_at datetime2(7)  NULL,
    CONSTRAINT es_nodes_pk PRIMARY KEY NONCLUSTERED (node, tbl)
);
GO

-- hard deletes of synced rows, kept so edges learn about them
CREATE TABLE [dbo].es_tombstones (
    tbl       nvarchar(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
    k         nvarchar(500) COLLATE Latin1_General_100_BIN2 NOT NULL,
    es_ver    rowversion    NOT NULL,
    es_hlc    bigint        NOT NULL CONSTRAINT es_tombstones_hlc_df DEFAULT 0,
    es_origin nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq   bigint        NULL,
    CONSTRAINT es_tombstones_pk PRIMARY KEY NONCLUSTERED (tbl, k)
);
GO

-- index for pulling the tombstones written after a watermark
CREATE INDEX es_tombstones_ver ON [dbo].es_tombstones (tbl, es_ver);
GO

-- the conflict log (every conflict, however resolved; manual ones stay open)
CREATE TABLE [dbo].es_conflicts (
    id           bigint IDENTITY(1, 1) NOT NULL CONSTRAINT es_conflicts_pk PRIMARY KEY,
    tbl          nvarchar(300) NOT NULL,
    key_json     nvarchar(max) NOT NULL,
    node         nvarchar(256) NOT NULL,
    strategy     nvarchar(32)  NOT NULL,
    base_ver     bigint        NULL,
    base_json    nvarchar(max) NULL,
    local_json   nvarchar(max) NULL,
    central_json nvarchar(max) NULL,
    result_json  nvarchar(max) NULL,
    local_hlc    bigint        NOT NULL,
    central_hlc  bigint        NOT NULL,
    [at]         datetime2(7)  NOT NULL CONSTRAINT es_conflicts_at_df DEFAULT SYSUTCDATETIME(),
    [open]       bit           NOT NULL CONSTRAINT es_conflicts_open_df DEFAULT 0,
    resolved_at  datetime2(7)  NULL,
    kept         nvarchar(16)  NULL
);
GO

-- add the edgesync metadata columns to sales.order]lines
ALTER TABLE [sales].[order]]lines] ADD
    es_ver     rowversion    NOT NULL,
    es_deleted bit           NOT NULL CONSTRAINT [es_df_deleted_sales_order_lines] DEFAULT 0,
    es_hlc     bigint        NOT NULL CONSTRAINT [es_df_hlc_sales_order_lines] DEFAULT 0,
    es_origin  nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq    bigint        NULL;
GO

-- index for pulling the rows of sales.order]lines written after a watermark
CREATE INDEX [es_ver_sales_order_lines] ON [sales].[order]]lines] (es_ver);
GO

-- trigger stamping application writes to sales.order]lines
CREATE OR ALTER TRIGGER [sales].[es_trg_w_sales_order_lines] ON [sales].[order]]lines] AFTER INSERT, UPDATE AS
BEGIN
    /* edgesync 895cef8dee527738 */
    SET NOCOUNT ON;
    IF TRIGGER_NESTLEVEL(@@PROCID) > 1 RETURN;
    IF NOT EXISTS (SELECT 1 FROM inserted) RETURN;
    DELETE ts FROM [sales].es_tombstones AS ts
      JOIN inserted AS i ON ts.tbl = N'sales.order]lines' AND ts.k = (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), i.[order_id]), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), i.[line_no]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    UPDATE t
       SET es_origin = NULL, es_oseq = NULL,
           es_hlc = CASE WHEN d.es_hlc IS NOT NULL AND d.es_hlc + 1 > @now
                         THEN d.es_hlc + 1 ELSE @now END
      FROM [sales].[order]]lines] AS t
      JOIN inserted AS i ON t.[order_id] = i.[order_id] AND t.[line_no] = i.[line_no]
      LEFT JOIN deleted AS d ON d.[order_id] = i.[order_id] AND d.[line_no] = i.[line_no];
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    MERGE [sales].es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), d.[order_id]), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), d.[line_no]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d
            WHERE NOT EXISTS (SELECT 1 FROM inserted AS i WHERE d.[order_id] = i.[order_id] AND d.[line_no] = i.[line_no])) AS s
       ON ts.tbl = N'sales.order]lines' AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES (N'sales.order]lines', s.k, s.hlc);
END
GO

-- trigger keeping the tombstones of sales.order]lines
CREATE OR ALTER TRIGGER [sales].[es_trg_d_sales_order_lines] ON [sales].[order]]lines] AFTER DELETE AS
BEGIN
    /* edgesync edd2d2e1cb1801ef */
    SET NOCOUNT ON;
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    MERGE [sales].es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), d.[order_id]), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), d.[line_no]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d) AS s
       ON ts.tbl = N'sales.order]lines' AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES (N'sales.order]lines', s.k, s.hlc);
END
GO

-- soft deletes: an application DELETE on sales.order]lines sets es_deleted instead
CREATE OR ALTER TRIGGER [sales].[es_trg_s_sales_order_lines] ON [sales].[order]]lines] INSTEAD OF DELETE AS
BEGIN
    /* edgesync 160210828f967337 */
    SET NOCOUNT ON;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1
    BEGIN
        DELETE t FROM [sales].[order]]lines] AS t JOIN deleted AS d ON t.[order_id] = d.[order_id] AND t.[line_no] = d.[line_no];
        RETURN;
    END;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    UPDATE t
       SET es_deleted = 1, es_origin = NULL, es_oseq = NULL,
           es_hlc = CASE WHEN t.es_hlc + 1 > @now THEN t.es_hlc + 1 ELSE @now END
      FROM [sales].[order]]lines] AS t
      JOIN deleted AS d ON t.[order_id] = d.[order_id] AND t.[line_no] = d.[line_no];
END
GO

-- add the edgesync metadata columns to dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
ALTER TABLE [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] ADD
    es_ver     rowversion    NOT NULL,
    es_deleted bit           NOT NULL CONSTRAINT [es_df_deleted_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_ebb66c78] DEFAULT 0,
    es_hlc     bigint        NOT NULL CONSTRAINT [es_df_hlc_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_eee3e4b4] DEFAULT 0,
    es_origin  nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
    es_oseq    bigint        NULL;
GO

-- index for pulling the rows of dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx written after a watermark
CREATE INDEX [es_ver_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_d27b9183] ON [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] (es_ver);
GO

-- trigger stamping application writes to dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
CREATE OR ALTER TRIGGER [dbo].[es_trg_w_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_670ef0c3] ON [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AFTER INSERT, UPDATE AS
BEGIN
    /* edgesync 202275d50afa2d4c */
    SET NOCOUNT ON;
    IF TRIGGER_NESTLEVEL(@@PROCID) > 1 RETURN;
    IF NOT EXISTS (SELECT 1 FROM inserted) RETURN;
    DELETE ts FROM [dbo].es_tombstones AS ts
      JOIN inserted AS i ON ts.tbl = N'dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' AND ts.k = (N'["' + STRING_ESCAPE(i.[region], 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), i.[device])), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), i.[day], 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(i.[at], '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), i.[amount]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    UPDATE t
       SET es_origin = NULL, es_oseq = NULL,
           es_hlc = CASE WHEN d.es_hlc IS NOT NULL AND d.es_hlc + 1 > @now
                         THEN d.es_hlc + 1 ELSE @now END
      FROM [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t
      JOIN inserted AS i ON t.[region] = i.[region] AND t.[device] = i.[device] AND t.[day] = i.[day] AND t.[at] = i.[at] AND t.[amount] = i.[amount]
      LEFT JOIN deleted AS d ON d.[region] = i.[region] AND d.[device] = i.[device] AND d.[day] = i.[day] AND d.[at] = i.[at] AND d.[amount] = i.[amount];
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    MERGE [dbo].es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT (N'["' + STRING_ESCAPE(d.[region], 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), d.[device])), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), d.[day], 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(d.[at], '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), d.[amount]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d
            WHERE NOT EXISTS (SELECT 1 FROM inserted AS i WHERE d.[region] = i.[region] AND d.[device] = i.[device] AND d.[day] = i.[day] AND d.[at] = i.[at] AND d.[amount] = i.[amount])) AS s
       ON ts.tbl = N'dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES (N'dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', s.k, s.hlc);
END
GO

-- trigger keeping the tombstones of dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
CREATE OR ALTER TRIGGER [dbo].[es_trg_d_dbo_device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_2c082118] ON [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AFTER DELETE AS
BEGIN
    /* edgesync f67f2a913f986700 */
    SET NOCOUNT ON;
    IF NOT EXISTS (SELECT 1 FROM deleted) RETURN;
    IF ISNULL(CAST(SESSION_CONTEXT(N'edgesync.applying') AS int), 0) = 1 RETURN;
    DECLARE @now bigint = DATEDIFF_BIG(millisecond, '19700101', SYSUTCDATETIME()) * 65536;
    MERGE [dbo].es_tombstones WITH (HOLDLOCK) AS ts
    USING (SELECT (N'["' + STRING_ESCAPE(d.[region], 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), d.[device])), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), d.[day], 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(d.[at], '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), d.[amount]), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k,
                  CASE WHEN d.es_hlc + 1 > @now THEN d.es_hlc + 1 ELSE @now END AS hlc
             FROM deleted AS d) AS s
       ON ts.tbl = N'dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' AND ts.k = s.k
     WHEN MATCHED THEN UPDATE SET es_hlc = s.hlc, es_origin = NULL, es_oseq = NULL
     WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc) VALUES (N'dbo.device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', s.k, s.hlc);
END
GO

