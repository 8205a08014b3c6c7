-- The header fields SEARCH compares most (Subject, From, To, Cc, Bcc), each as SEARCH compares
-- it (courriel.mail.searchtext.stored_text: decoded, case-folded, with the parsed addresses),
-- NULL where the message has no such field. One short row per message, clustered by mailbox
-- and UID, so a search reads a few pages instead of every message's row. Made at append, copy
-- and move; made from the stored parse on the first search for messages stored before this
-- version (a message without a row here is one not made yet).
CREATE TABLE message_search (
    mailbox_id  INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    hdr_subject TEXT,
    hdr_from    TEXT,
    hdr_to      TEXT,
    hdr_cc      TEXT,
    hdr_bcc     TEXT,
    PRIMARY KEY (mailbox_id, uid),
    FOREIGN KEY (mailbox_id, uid) REFERENCES messages (mailbox_id, uid) ON DELETE CASCADE
) WITHOUT ROWID;
