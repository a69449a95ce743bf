-- edgesync: a column the central table gained (schema evolution), added to
-- the edge table. Always nullable on the edge: existing rows have no value
-- until the re-pull of the table (es_schema.refill) fetches it.
ALTER TABLE {{table}} ADD COLUMN {{column}} {{decl}};
