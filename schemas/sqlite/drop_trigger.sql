-- edgesync: remove one of its triggers (deinit-sync, or a trigger whose
-- definition changed with the table's direction or deletes mode). Triggers go
-- first: SQLite will not drop a column a trigger refers to.
DROP TRIGGER IF EXISTS {{trigger}};
