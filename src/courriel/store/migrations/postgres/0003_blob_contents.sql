-- Message bodies inside the database (PostgreSQL only), so a node needs no local disk for mail.
-- A body is written (and committed) before the transaction whose blobs row points at it; the
-- foreign key makes a row without its body impossible even if a deletion races an append on
-- another node: the append then fails whole instead of committing a dangling reference.
-- put_at lets deletion spare bodies written moments ago that an append is about to reference.

CREATE TABLE blob_contents (
    id     TEXT PRIMARY KEY,
    data   BYTEA NOT NULL,
    put_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Bodies are already compressed or not worth it at PostgreSQL's speed; store them as they are.
ALTER TABLE blob_contents ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX blob_contents_put_at ON blob_contents (put_at);

ALTER TABLE blobs ADD CONSTRAINT blobs_content FOREIGN KEY (id) REFERENCES blob_contents (id);
