-- The PostgreSQL schema has indexed messages(blob_id) from the start; SQLite lacked it. With
-- foreign keys on, freeing a body checks that no message refers to it: without the index that
-- check reads the whole messages table, inside the one writer, for every freed body.
CREATE INDEX IF NOT EXISTS messages_blob ON messages (blob_id);
