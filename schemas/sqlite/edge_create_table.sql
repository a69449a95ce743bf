-- edgesync: create an edge table that does not exist yet, from the central
-- table's schema. Column types follow the type table in docs/design.md: every
-- value edgesync stores as text gets a declared type with TEXT affinity
-- (DECIMAL_TEXT, TIMESTAMPTZ_TEXT, ...), never NUMERIC affinity, which would
-- turn the decimal text 1.10 into the float 1.1.
CREATE TABLE {{table}} (
{{columns}},
  PRIMARY KEY ({{key_columns}})
);
