-- edgesync: the change reader selects rows by es_ver (edge: es_ver > push
-- watermark; central: es_ver > pull token), so index it.
CREATE INDEX IF NOT EXISTS {{index}} ON {{table}} (es_ver);
