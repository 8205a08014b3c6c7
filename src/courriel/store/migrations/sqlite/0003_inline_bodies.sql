-- Small bodies live in their blobs row, written in the transaction of the message that first
-- references them, so they ride the group commit instead of costing fsyncs of their own.
-- NULL: the body is a file under the blobs directory (every body stored before this version).
ALTER TABLE blobs ADD COLUMN data BLOB;
