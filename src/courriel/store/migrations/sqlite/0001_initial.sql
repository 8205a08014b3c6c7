-- courriel schema, version 1 (SQLite dialect).
-- The logic in courriel/store/sql/ is written against these tables; the PostgreSQL twin must
-- keep the same table and column names and column kinds (integers, text, bytes).
-- AUTOINCREMENT on ids a session may hold (users, mailboxes) so a deleted row's id is never
-- handed to a new row: a session keeping a stale mailbox id must find nothing, not a stranger.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Last UIDVALIDITY handed out; new ones are max(last + 1, now in seconds).
INSERT INTO counters (name, value) VALUES ('uidvalidity', 0);

CREATE TABLE domains (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL UNIQUE,
    catch_all TEXT
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id     INTEGER NOT NULL REFERENCES domains (id),
    address       TEXT NOT NULL,
    address_key   TEXT NOT NULL UNIQUE,  -- address.lower(), computed by the store
    password_hash TEXT NOT NULL,
    quota_bytes   INTEGER,
    used_bytes    INTEGER NOT NULL DEFAULT 0,  -- kept in the same transactions as messages
    used_messages INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL  -- ISO 8601 with offset
);
CREATE INDEX users_domain ON users (domain_id);

CREATE TABLE aliases (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id  INTEGER NOT NULL REFERENCES domains (id),
    source     TEXT NOT NULL,
    source_key TEXT NOT NULL,  -- source.lower()
    target     TEXT NOT NULL,
    UNIQUE (source_key, target)
);
CREATE INDEX aliases_domain ON aliases (domain_id);

CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    special_use   TEXT,
    UNIQUE (user_id, name)
);

-- Names, not mailbox ids: a subscription outlives its mailbox (RFC 9051 §6.3.7).
CREATE TABLE subscriptions (
    user_id INTEGER NOT NULL REFERENCES users (id),
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- One row per distinct body; id is the blob store's key (SHA-256 hex for files).
CREATE TABLE blobs (
    id       TEXT PRIMARY KEY,
    refcount INTEGER NOT NULL,
    size     INTEGER NOT NULL
);

CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id),
    uid           INTEGER NOT NULL,
    modseq        INTEGER NOT NULL,
    sysflags      INTEGER NOT NULL,  -- bit mask of system flags, see sql/core.py FLAG_BITS
    keywords      TEXT NOT NULL,     -- keywords, sorted, space-separated; '' for none
    internal_date TEXT NOT NULL,     -- ISO 8601 with offset
    size          INTEGER NOT NULL,
    blob_id       TEXT NOT NULL REFERENCES blobs (id),
    meta          BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
