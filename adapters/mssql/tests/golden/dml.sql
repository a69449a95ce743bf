-- create the staging table
IF OBJECT_ID(N'tempdb..#es_stage') IS NOT NULL DROP TABLE #es_stage;
CREATE TABLE #es_stage (es_ord int NOT NULL PRIMARY KEY, es_act tinyint NOT NULL, es_hv bit NOT NULL, es_del bit NOT NULL, es_oseq bigint NULL, es_hlc bigint NOT NULL, a0 bigint NULL, a1 bigint NULL, a2 bit NULL, a3 float NULL, a4 decimal(38,10) NULL, a5 nvarchar(200) COLLATE SQL_Latin1_General_CP1_CI_AS NULL, a6 nvarchar(max) COLLATE SQL_Latin1_General_CP1_CI_AS NULL, a7 varbinary(max) NULL, a8 date NULL, a9 time(7) NULL, a10 datetime2(7) NULL, a11 datetimeoffset(7) NULL, a12 uniqueidentifier NULL, a13 nvarchar(max) COLLATE SQL_Latin1_General_CP1_CI_AS NULL);
GO

-- stage two keys
INSERT INTO #es_stage (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8), (@P9, @P10, @P11, @P12, @P13, @P14, @P15, @P16)
GO

-- stage two rows
INSERT INTO #es_stage (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, @P13, @P14, @P15, @P16, @P17, @P18, CAST(@P19 AS uniqueidentifier), @P20), (@P21, @P22, @P23, @P24, @P25, @P26, @P27, @P28, @P29, @P30, @P31, @P32, @P33, @P34, @P35, @P36, @P37, @P38, CAST(@P39 AS uniqueidentifier), @P40)
GO

-- lock current rows and tombstones
SELECT s.es_ord, CAST(t.[order_id] AS bigint), CAST(t.[line_no] AS bigint), t.[flag], t.[ratio], t.[price], t.[note], t.[body], t.[payload], t.[due], t.[at_time], t.[created], t.[updated_tz], CAST(t.[ref_id] AS binary(16)), t.[doc], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq,
       CAST(ts.es_ver AS bigint), ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM #es_stage AS s
  LEFT JOIN [sales].[order]]lines] AS t WITH (UPDLOCK, HOLDLOCK) ON t.[order_id] = s.a0 AND t.[line_no] = s.a1
  LEFT JOIN [sales].[es_tombstones] AS ts WITH (UPDLOCK, HOLDLOCK)
         ON t.es_ver IS NULL AND ts.tbl = @P1 AND ts.k = (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a0), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a1), 'json') + N'"]') COLLATE Latin1_General_100_BIN2
 ORDER BY s.es_ord
GO

-- update existing rows
UPDATE t SET [flag] = CASE WHEN s.es_hv = 1 THEN s.a2 ELSE t.[flag] END, [ratio] = CASE WHEN s.es_hv = 1 THEN s.a3 ELSE t.[ratio] END, [price] = CASE WHEN s.es_hv = 1 THEN s.a4 ELSE t.[price] END, [note] = CASE WHEN s.es_hv = 1 THEN s.a5 ELSE t.[note] END, [body] = CASE WHEN s.es_hv = 1 THEN s.a6 ELSE t.[body] END, [payload] = CASE WHEN s.es_hv = 1 THEN s.a7 ELSE t.[payload] END, [due] = CASE WHEN s.es_hv = 1 THEN s.a8 ELSE t.[due] END, [at_time] = CASE WHEN s.es_hv = 1 THEN s.a9 ELSE t.[at_time] END, [created] = CASE WHEN s.es_hv = 1 THEN s.a10 ELSE t.[created] END, [updated_tz] = CASE WHEN s.es_hv = 1 THEN s.a11 ELSE t.[updated_tz] END, [ref_id] = CASE WHEN s.es_hv = 1 THEN s.a12 ELSE t.[ref_id] END, [doc] = CASE WHEN s.es_hv = 1 THEN s.a13 ELSE t.[doc] END, es_deleted = s.es_del, es_origin = @P1, es_oseq = s.es_oseq, es_hlc = s.es_hlc
  FROM [sales].[order]]lines] AS t JOIN #es_stage AS s ON t.[order_id] = s.a0 AND t.[line_no] = s.a1
 WHERE s.es_act = 1
GO

-- insert new rows
INSERT INTO [sales].[order]]lines] ([order_id], [line_no], [flag], [ratio], [price], [note], [body], [payload], [due], [at_time], [created], [updated_tz], [ref_id], [doc], es_deleted, es_origin, es_oseq, es_hlc)
SELECT s.a0, s.a1, s.a2, s.a3, s.a4, s.a5, s.a6, s.a7, s.a8, s.a9, s.a10, s.a11, s.a12, s.a13, s.es_del, @P1, s.es_oseq, s.es_hlc FROM #es_stage AS s WHERE s.es_act = 2
GO

-- hard delete rows, write tombstones
DELETE t FROM [sales].[order]]lines] AS t JOIN #es_stage AS s ON t.[order_id] = s.a0 AND t.[line_no] = s.a1 WHERE s.es_act = 3;
MERGE [sales].[es_tombstones] WITH (HOLDLOCK) AS ts
USING (SELECT (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a0), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a1), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k, s.es_oseq, s.es_hlc FROM #es_stage AS s WHERE s.es_act = 3) AS d
   ON ts.tbl = @P2 AND ts.k = d.k
 WHEN MATCHED THEN UPDATE SET es_hlc = d.es_hlc, es_origin = @P1, es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (@P2, d.k, d.es_hlc, @P1, d.es_oseq);
GO

-- read the new versions
SELECT s.es_ord, CAST(t.es_ver AS bigint) FROM #es_stage AS s
  JOIN [sales].[order]]lines] AS t ON t.[order_id] = s.a0 AND t.[line_no] = s.a1 WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, CAST(ts.es_ver AS bigint) FROM #es_stage AS s
  JOIN [sales].[es_tombstones] AS ts ON ts.tbl = @P1 AND ts.k = (N'["' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a0), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(20), s.a1), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 WHERE s.es_act = 3
GO

-- log two conflicts
INSERT INTO [sales].[es_conflicts] (tbl, key_json, node, strategy, base_ver, base_json, local_json, central_json, result_json, local_hlc, central_hlc, [open], resolved_at) VALUES (@P1, @P3, @P2, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, CASE WHEN @P12 = 1 THEN NULL ELSE SYSUTCDATETIME() END), (@P1, @P13, @P2, @P14, @P15, @P16, @P17, @P18, @P19, @P20, @P21, @P22, CASE WHEN @P22 = 1 THEN NULL ELSE SYSUTCDATETIME() END)
GO

-- read the pull bound
SELECT CAST(MIN_ACTIVE_ROWVERSION() AS bigint)
GO

-- pull rows, initial load
SELECT TOP (@P1) CAST(t.[order_id] AS bigint), CAST(t.[line_no] AS bigint), t.[flag], t.[ratio], t.[price], t.[note], t.[body], t.[payload], t.[due], t.[at_time], t.[created], t.[updated_tz], CAST(t.[ref_id] AS binary(16)), t.[doc], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc
  FROM [sales].[order]]lines] AS t
 WHERE (t.es_origin IS NULL OR t.es_origin <> @P2)
 ORDER BY t.[order_id], t.[line_no]
GO

-- pull rows after a watermark and a cursor
SELECT TOP (@P1) CAST(t.[order_id] AS bigint), CAST(t.[line_no] AS bigint), t.[flag], t.[ratio], t.[price], t.[note], t.[body], t.[payload], t.[due], t.[at_time], t.[created], t.[updated_tz], CAST(t.[ref_id] AS binary(16)), t.[doc], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc
  FROM [sales].[order]]lines] AS t
 WHERE (t.es_origin IS NULL OR t.es_origin <> @P2) AND t.es_ver >= CAST(CAST(@P3 AS bigint) AS binary(8)) AND ((t.[order_id] > @P4) OR (t.[order_id] = @P4 AND t.[line_no] > @P5))
 ORDER BY t.[order_id], t.[line_no]
GO

-- pull tombstones, initial load
SELECT TOP (@P1) ts.k, CAST(ts.es_ver AS bigint), ts.es_hlc
  FROM [sales].[es_tombstones] AS ts
 WHERE ts.tbl = @P2 AND (ts.es_origin IS NULL OR ts.es_origin <> @P3)
 ORDER BY ts.k
GO

-- pull tombstones after a watermark and a cursor
SELECT TOP (@P1) ts.k, CAST(ts.es_ver AS bigint), ts.es_hlc
  FROM [sales].[es_tombstones] AS ts
 WHERE ts.tbl = @P2 AND (ts.es_origin IS NULL OR ts.es_origin <> @P3) AND ts.es_ver >= CAST(CAST(@P4 AS bigint) AS binary(8)) AND ts.k > @P5
 ORDER BY ts.k
GO

-- conflicts resolve --keep local
UPDATE [sales].[order]]lines] SET [flag] = @P3, [ratio] = @P4, [price] = @P5, [note] = @P6, [body] = @P7, [payload] = @P8, [due] = @P9, [at_time] = @P10, [created] = @P11, [updated_tz] = @P12, [ref_id] = CAST(@P13 AS uniqueidentifier), [doc] = @P14, es_deleted = 0 WHERE [order_id] = @P1 AND [line_no] = @P2;
IF @@ROWCOUNT = 0
    INSERT INTO [sales].[order]]lines] ([order_id], [line_no], [flag], [ratio], [price], [note], [body], [payload], [due], [at_time], [created], [updated_tz], [ref_id], [doc]) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, CAST(@P13 AS uniqueidentifier), @P14);
GO

-- create the staging table
IF OBJECT_ID(N'tempdb..#es_stage') IS NOT NULL DROP TABLE #es_stage;
CREATE TABLE #es_stage (es_ord int NOT NULL PRIMARY KEY, es_act tinyint NOT NULL, es_hv bit NOT NULL, es_del bit NOT NULL, es_oseq bigint NULL, es_hlc bigint NOT NULL, a0 nvarchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS NULL, a1 uniqueidentifier NULL, a2 date NULL, a3 datetimeoffset(7) NULL, a4 decimal(12,2) NULL, a5 float NULL);
GO

-- stage two keys
INSERT INTO #es_stage (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3, a4) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, CAST(@P8 AS uniqueidentifier), @P9, @P10, @P11), (@P12, @P13, @P14, @P15, @P16, @P17, @P18, CAST(@P19 AS uniqueidentifier), @P20, @P21, @P22)
GO

-- stage two rows
INSERT INTO #es_stage (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, a0, a1, a2, a3, a4, a5) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, CAST(@P8 AS uniqueidentifier), @P9, @P10, @P11, @P12), (@P13, @P14, @P15, @P16, @P17, @P18, @P19, CAST(@P20 AS uniqueidentifier), @P21, @P22, @P23, @P24)
GO

-- lock current rows and tombstones
SELECT s.es_ord, t.[region], CAST(t.[device] AS binary(16)), t.[day], t.[at], t.[amount], t.[reading], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq,
       CAST(ts.es_ver AS bigint), ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM #es_stage AS s
  LEFT JOIN [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t WITH (UPDLOCK, HOLDLOCK) ON t.[region] = s.a0 AND t.[device] = s.a1 AND t.[day] = s.a2 AND t.[at] = s.a3 AND t.[amount] = s.a4
  LEFT JOIN [dbo].[es_tombstones] AS ts WITH (UPDLOCK, HOLDLOCK)
         ON t.es_ver IS NULL AND ts.tbl = @P1 AND ts.k = (N'["' + STRING_ESCAPE(s.a0, 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), s.a1)), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), s.a2, 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(s.a3, '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), s.a4), 'json') + N'"]') COLLATE Latin1_General_100_BIN2
 ORDER BY s.es_ord
GO

-- update existing rows
UPDATE t SET [reading] = CASE WHEN s.es_hv = 1 THEN s.a5 ELSE t.[reading] END, es_deleted = s.es_del, es_origin = @P1, es_oseq = s.es_oseq, es_hlc = s.es_hlc
  FROM [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t JOIN #es_stage AS s ON t.[region] = s.a0 AND t.[device] = s.a1 AND t.[day] = s.a2 AND t.[at] = s.a3 AND t.[amount] = s.a4
 WHERE s.es_act = 1
GO

-- insert new rows
INSERT INTO [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] ([region], [device], [day], [at], [amount], [reading], es_deleted, es_origin, es_oseq, es_hlc)
SELECT s.a0, s.a1, s.a2, s.a3, s.a4, s.a5, s.es_del, @P1, s.es_oseq, s.es_hlc FROM #es_stage AS s WHERE s.es_act = 2
GO

-- hard delete rows, write tombstones
DELETE t FROM [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t JOIN #es_stage AS s ON t.[region] = s.a0 AND t.[device] = s.a1 AND t.[day] = s.a2 AND t.[at] = s.a3 AND t.[amount] = s.a4 WHERE s.es_act = 3;
MERGE [dbo].[es_tombstones] WITH (HOLDLOCK) AS ts
USING (SELECT (N'["' + STRING_ESCAPE(s.a0, 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), s.a1)), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), s.a2, 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(s.a3, '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), s.a4), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 AS k, s.es_oseq, s.es_hlc FROM #es_stage AS s WHERE s.es_act = 3) AS d
   ON ts.tbl = @P2 AND ts.k = d.k
 WHEN MATCHED THEN UPDATE SET es_hlc = d.es_hlc, es_origin = @P1, es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (@P2, d.k, d.es_hlc, @P1, d.es_oseq);
GO

-- read the new versions
SELECT s.es_ord, CAST(t.es_ver AS bigint) FROM #es_stage AS s
  JOIN [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t ON t.[region] = s.a0 AND t.[device] = s.a1 AND t.[day] = s.a2 AND t.[at] = s.a3 AND t.[amount] = s.a4 WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, CAST(ts.es_ver AS bigint) FROM #es_stage AS s
  JOIN [dbo].[es_tombstones] AS ts ON ts.tbl = @P1 AND ts.k = (N'["' + STRING_ESCAPE(s.a0, 'json') + N'","' + STRING_ESCAPE(LOWER(CONVERT(nvarchar(36), s.a1)), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(10), s.a2, 23), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(27), CAST(SWITCHOFFSET(s.a3, '+00:00') AS datetime2(7)), 121), 'json') + N'","' + STRING_ESCAPE(CONVERT(nvarchar(50), s.a4), 'json') + N'"]') COLLATE Latin1_General_100_BIN2 WHERE s.es_act = 3
GO

-- log two conflicts
INSERT INTO [dbo].[es_conflicts] (tbl, key_json, node, strategy, base_ver, base_json, local_json, central_json, result_json, local_hlc, central_hlc, [open], resolved_at) VALUES (@P1, @P3, @P2, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, CASE WHEN @P12 = 1 THEN NULL ELSE SYSUTCDATETIME() END), (@P1, @P13, @P2, @P14, @P15, @P16, @P17, @P18, @P19, @P20, @P21, @P22, CASE WHEN @P22 = 1 THEN NULL ELSE SYSUTCDATETIME() END)
GO

-- read the pull bound
SELECT CAST(MIN_ACTIVE_ROWVERSION() AS bigint)
GO

-- pull rows, initial load
SELECT TOP (@P1) t.[region], CAST(t.[device] AS binary(16)), t.[day], t.[at], t.[amount], t.[reading], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc
  FROM [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t
 WHERE (t.es_origin IS NULL OR t.es_origin <> @P2)
 ORDER BY t.[region], t.[device], t.[day], t.[at], t.[amount]
GO

-- pull rows after a watermark and a cursor
SELECT TOP (@P1) t.[region], CAST(t.[device] AS binary(16)), t.[day], t.[at], t.[amount], t.[reading], CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc
  FROM [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] AS t
 WHERE (t.es_origin IS NULL OR t.es_origin <> @P2) AND t.es_ver >= CAST(CAST(@P3 AS bigint) AS binary(8)) AND ((t.[region] > @P4) OR (t.[region] = @P4 AND t.[device] > CAST(@P5 AS uniqueidentifier)) OR (t.[region] = @P4 AND t.[device] = CAST(@P5 AS uniqueidentifier) AND t.[day] > @P6) OR (t.[region] = @P4 AND t.[device] = CAST(@P5 AS uniqueidentifier) AND t.[day] = @P6 AND t.[at] > @P7) OR (t.[region] = @P4 AND t.[device] = CAST(@P5 AS uniqueidentifier) AND t.[day] = @P6 AND t.[at] = @P7 AND t.[amount] > @P8))
 ORDER BY t.[region], t.[device], t.[day], t.[at], t.[amount]
GO

-- pull tombstones, initial load
SELECT TOP (@P1) ts.k, CAST(ts.es_ver AS bigint), ts.es_hlc
  FROM [dbo].[es_tombstones] AS ts
 WHERE ts.tbl = @P2 AND (ts.es_origin IS NULL OR ts.es_origin <> @P3)
 ORDER BY ts.k
GO

-- pull tombstones after a watermark and a cursor
SELECT TOP (@P1) ts.k, CAST(ts.es_ver AS bigint), ts.es_hlc
  FROM [dbo].[es_tombstones] AS ts
 WHERE ts.tbl = @P2 AND (ts.es_origin IS NULL OR ts.es_origin <> @P3) AND ts.es_ver >= CAST(CAST(@P4 AS bigint) AS binary(8)) AND ts.k > @P5
 ORDER BY ts.k
GO

-- conflicts resolve --keep local
UPDATE [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] SET [reading] = @P6, es_deleted = 0 WHERE [region] = @P1 AND [device] = CAST(@P2 AS uniqueidentifier) AND [day] = @P3 AND [at] = @P4 AND [amount] = @P5;
IF @@ROWCOUNT = 0
    INSERT INTO [dbo].[device_events_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx] ([region], [device], [day], [at], [amount], [reading]) VALUES (@P1, CAST(@P2 AS uniqueidentifier), @P3, @P4, @P5, @P6);
GO

