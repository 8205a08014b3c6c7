-- Sieve scripts (RFC 5228) of each user, edited over ManageSieve (RFC 5804): many named
-- scripts, at most one active (RFC 5804 §1.2), kept in the store so that every node filters
-- with the same one. Global scripts are what "include :global" names (RFC 6609 §3.2).
-- Per-user delivery options: tag_folders delivers user+tag@domain into the folder "tag".

CREATE TABLE sieve_scripts (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    content TEXT NOT NULL,
    active  INTEGER NOT NULL DEFAULT 0,  -- 1 for the one active script
    PRIMARY KEY (user_id, name)
);
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (user_id) WHERE active = 1;

CREATE TABLE sieve_global_scripts (
    name    TEXT PRIMARY KEY,
    content TEXT NOT NULL
);

CREATE TABLE delivery_options (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tag_folders INTEGER NOT NULL DEFAULT 0
);
