-- Junk filtering (courriel.junk): each user's Bayesian model and the greylist, kept in the
-- store so that every process and every node scores and greylists alike.

-- Per user: how many messages were trained as ham and as spam, and the user's own score
-- threshold (NULL: the server's [junk] threshold).
CREATE TABLE junk_users (
    user_id   BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    ham       BIGINT NOT NULL DEFAULT 0,
    spam      BIGINT NOT NULL DEFAULT 0,
    threshold DOUBLE PRECISION
);

-- Per user and token: in how many ham and spam messages it was seen.
CREATE TABLE junk_tokens (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token   TEXT NOT NULL,
    ham     BIGINT NOT NULL,
    spam    BIGINT NOT NULL,
    PRIMARY KEY (user_id, token)
);

-- Per user and message (a digest of its bytes): the class it was trained as, so a message
-- that changes class is unlearned first and never counted twice.
CREATE TABLE junk_trained (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message TEXT NOT NULL,
    spam    INTEGER NOT NULL,  -- 1: trained as spam, 0: as ham
    PRIMARY KEY (user_id, message)
);

-- Greylisting: when a (client network, sender, recipient) triple was first seen, and until
-- when the row matters (the retry window, then the pass period once it passed).
CREATE TABLE greylist (
    triple     TEXT PRIMARY KEY,
    first_seen DOUBLE PRECISION NOT NULL,  -- seconds since the epoch
    passed     INTEGER NOT NULL DEFAULT 0,
    expires    DOUBLE PRECISION NOT NULL
);
CREATE INDEX greylist_expires ON greylist (expires);
