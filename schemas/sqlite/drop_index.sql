-- edgesync: remove the es_ver index (before its column can be dropped).
DROP INDEX IF EXISTS {{index}};
