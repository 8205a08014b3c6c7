-- Leases and rate counters: state that several courriel processes or machines must share
-- (one POP3 session per maildrop, failed-login counts), so it lives in the store.

CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL  -- seconds since the epoch
);

CREATE TABLE rate_counters (
    key     TEXT NOT NULL,
    bucket  BIGINT NOT NULL,  -- floor(time / window)
    count   BIGINT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key, bucket)
);
CREATE INDEX rate_counters_expires ON rate_counters (expires);
