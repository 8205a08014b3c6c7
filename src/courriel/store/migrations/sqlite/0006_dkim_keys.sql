-- DKIM signing keys of each domain (RFC 6376), kept in the store so that every node signs with
-- the same keys. A domain has one active key per algorithm; after a rotation the old ones are
-- "retiring" (still published, no longer used to sign) until retire_after, then "retired".
-- Dates are ISO 8601 text in UTC, so they compare as text.

CREATE TABLE dkim_keys (
    domain_id    INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector     TEXT NOT NULL,
    algorithm    TEXT NOT NULL,  -- ed25519 | rsa
    private_key  TEXT NOT NULL,  -- PKCS #8 PEM
    created      TEXT NOT NULL,
    state        TEXT NOT NULL,  -- active | retiring | retired
    retire_after TEXT,
    PRIMARY KEY (domain_id, selector)
);
