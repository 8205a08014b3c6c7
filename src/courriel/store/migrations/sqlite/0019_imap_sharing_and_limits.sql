-- Access control lists (RFC 4314): who besides the owner may use a mailbox, and how
-- (courriel.store.sql.acl). grantee_id is a user's id, or 0 for the identifier "anyone";
-- rights holds the granted rights letters of "lrswipkxtea" in that order. The owner's own rights
-- are implicit and never stored. Rows go with their mailbox and with their grantee (the store
-- deletes them), so a new user who later takes a removed user's address inherits nothing.
CREATE TABLE acl (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    grantee_id INTEGER NOT NULL,
    rights     TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, grantee_id)
);
-- What is shared with a user (LIST, NAMESPACE of other users): found by grantee.
CREATE INDEX acl_grantee ON acl (grantee_id);

-- QUOTA resources MESSAGE and MAILBOX (RFC 9208 §5.2, §5.3): limits on a user's number of
-- messages and of mailboxes; NULL: no limit. STORAGE is quota_bytes (0001).
ALTER TABLE users ADD COLUMN quota_messages INTEGER;
ALTER TABLE users ADD COLUMN quota_mailboxes INTEGER;

-- METADATA (RFC 5464, courriel.store.sql.metadata): annotations of a mailbox, or of the server
-- (mailbox_id 0). owner_id is the user of a /private entry, 0 for a /shared one; entry is the
-- lower-case entry name. Rows go with their mailbox and their owner.
CREATE TABLE metadata (
    mailbox_id INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL,
    entry      TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, owner_id, entry)
);
CREATE INDEX metadata_owner ON metadata (owner_id);

-- URLAUTH (RFC 4467, courriel.store.sql.urlauth): the mailbox access key that signs the
-- URLAUTH URLs of a mailbox's messages (INTERNAL mechanism). RESETKEY deletes it, which voids
-- every URL signed with it; the next GENURLAUTH makes a new one. Goes with its mailbox.
CREATE TABLE urlauth_keys (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes (id),
    key        BLOB NOT NULL
);

-- \Seen of a grantee on another user's mailbox (RFC 4314 §4 allows \Seen per user; courriel
-- keeps it so, as Dovecot does, courriel.store.sql.seen): one row per message the grantee has
-- seen. The owner's \Seen stays in messages.sysflags. Rows go with their mailbox and user.
CREATE TABLE private_seen (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    user_id    INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, user_id, uid)
);
