-- The twin of the SQLite column that keeps small bodies in their blobs row. PostgreSQL keeps
-- every body in blob_contents, so here it stays NULL; the shared scripts read it all the same.
ALTER TABLE blobs ADD COLUMN data BYTEA;
