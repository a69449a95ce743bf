-- edgesync: remove one es_ column. User columns and rows are untouched.
ALTER TABLE {{table}} DROP COLUMN {{column}};
