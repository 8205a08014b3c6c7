-- The listing SELECT reads (uid, modseq, flags, date, size) of a mailbox's messages: held in
-- one index, it is an index-only scan, not a visit to each message's row (which holds the
-- stored parse). The same index as SQLite's migration 0023, so the schemas stay alike.
CREATE INDEX IF NOT EXISTS messages_listing
    ON messages (mailbox_id, uid, modseq, sysflags, keywords, internal_date, size);
