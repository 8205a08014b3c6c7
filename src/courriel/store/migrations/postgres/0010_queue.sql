-- The outbound queue (courriel.store.queue): one row per accepted message for other domains,
-- one per remote recipient of it. Times are seconds since the epoch.

CREATE TABLE queue_messages (
    id            TEXT PRIMARY KEY,          -- the queue id of the Received field
    sender        TEXT NOT NULL,             -- '' for the null reverse-path
    ret           TEXT,                      -- RFC 3461 RET: FULL | HDRS
    envid         TEXT,                      -- RFC 3461 ENVID
    smtputf8      INTEGER NOT NULL,
    body_type     TEXT,                      -- 7BIT | 8BITMIME | BINARYMIME
    authenticated TEXT,
    created       DOUBLE PRECISION NOT NULL,
    size          BIGINT NOT NULL,
    message       BYTEA NOT NULL,
    held          INTEGER NOT NULL DEFAULT 0,
    warned        INTEGER NOT NULL DEFAULT 0, -- the delay warning went out
    next_attempt  DOUBLE PRECISION, -- NULL: nothing left to do
    lease_owner   TEXT,
    lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX queue_messages_due ON queue_messages (next_attempt);

CREATE TABLE queue_recipients (
    message_id   TEXT NOT NULL REFERENCES queue_messages (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    address      TEXT NOT NULL,
    domain       TEXT NOT NULL,
    notify       TEXT,                       -- NULL not given, '' NEVER, else 'DELAY,FAILURE'
    orcpt        TEXT,
    state        TEXT NOT NULL,              -- queued | delivered | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt DOUBLE PRECISION NOT NULL,
    last_attempt DOUBLE PRECISION,
    code         INTEGER,
    enhanced     TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    remote_host  TEXT NOT NULL DEFAULT '',
    report       TEXT,                       -- a DSN owed: failed | delayed | delivered
    PRIMARY KEY (message_id, idx)
);
