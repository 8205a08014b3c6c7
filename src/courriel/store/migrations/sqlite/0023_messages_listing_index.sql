-- SELECT lists a mailbox's messages (uid, modseq, flags, date, size). Through the primary key
-- alone, every message costs a lookup of its table row, which holds the stored parse too (a
-- page or more for a few rows): 10,000 messages read thousands of pages. This index holds the
-- listing itself, so SQLite answers it from the index alone, a few dozen rows per page.
CREATE INDEX IF NOT EXISTS messages_listing
    ON messages (mailbox_id, uid, modseq, sysflags, keywords, internal_date, size);
