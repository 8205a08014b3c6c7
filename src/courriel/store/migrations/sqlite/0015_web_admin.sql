-- The web admin and the JSON API (courriel.store.sql.access): administrators, app passwords,
-- sign-in sessions, API tokens, the audit log and the recent mail events.
-- Times are seconds since the epoch (UTC). Secrets (app passwords, session ids, API tokens) are
-- kept as SHA-256 digests in hex: they are random, long and made by the server, so a fast hash
-- is enough, and a copy of the database does not give them away.

ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;

-- Passwords a user makes for one device each; they log in to IMAP, POP3 and SMTP only.
CREATE TABLE app_passwords (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    digest   TEXT NOT NULL UNIQUE,
    created  INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

-- Signed-in web sessions, shared by every worker and node.
CREATE TABLE web_sessions (
    digest   TEXT PRIMARY KEY,  -- SHA-256 of the cookie's session id
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf     TEXT NOT NULL,     -- the session's CSRF token, sent back in every form
    created  INTEGER NOT NULL,
    seen     INTEGER NOT NULL   -- last request (updated at most once a minute)
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Tokens of the JSON API (Bearer), with administrator rights.
CREATE TABLE api_tokens (
    name     TEXT PRIMARY KEY,
    digest   TEXT NOT NULL UNIQUE,
    created  INTEGER NOT NULL
);

-- Every administrative action, from the web admin, the API or the command line.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL
);

-- The last deliveries and refusals with their reasons (bounded: older rows are dropped).
CREATE TABLE mail_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,  -- delivered | refused | relayed | failed
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    detail    TEXT NOT NULL
);
