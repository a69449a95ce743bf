-- edgesync: rows that existed before init-sync have never been uploaded. Give
-- each one its own local sequence number, in key order, so the first push sends
-- them all and a push batch can end between any two of them. Runs before the
-- triggers are created, so it is not itself captured.
UPDATE es_ctl
   SET hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1);
;;
UPDATE {{table}}
   SET es_ver = (SELECT seq FROM es_ctl) + r.es_n,
       es_hlc = (SELECT hlc FROM es_ctl)
  FROM (SELECT {{key_columns}}, row_number() OVER (ORDER BY {{key_columns}}) AS es_n
          FROM {{table}}) AS r
 WHERE {{key_match_r}};
;;
UPDATE es_ctl SET seq = MAX(seq, (SELECT COALESCE(MAX(es_ver), 0) FROM {{table}}));
