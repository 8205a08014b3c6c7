-- ACME (RFC 8555): the account, the challenges being answered and the certificates issued, kept
-- in the store so that every worker process and every node serves the same certificate and can
-- answer a challenge that another process asked for (courriel.store.sql.acme).

CREATE TABLE acme_accounts (
    directory    TEXT PRIMARY KEY,  -- the ACME server's directory URL
    key_pem      TEXT NOT NULL,     -- the account key, PKCS #8 PEM
    uri          TEXT NOT NULL,     -- the account URL the server gave ("" before registration)
    failures     INTEGER NOT NULL,  -- orders failed in a row (the retry backoff)
    retry_at     REAL NOT NULL,     -- no new order before this time (seconds since the epoch)
    last_error   TEXT NOT NULL      -- why the last order failed, in words ("" after a success)
);

CREATE TABLE acme_challenges (
    token             TEXT PRIMARY KEY,
    name              TEXT NOT NULL,  -- the host name being validated
    kind              TEXT NOT NULL,  -- http-01 | tls-alpn-01
    key_authorization TEXT NOT NULL,
    expires           REAL NOT NULL
);

CREATE TABLE tls_certificates (
    name      TEXT PRIMARY KEY,  -- "acme": the certificate every listener serves
    cert_pem  TEXT NOT NULL,     -- the full chain, leaf first
    key_pem   TEXT NOT NULL,
    serial    TEXT NOT NULL,     -- hexadecimal: how a worker sees that it changed
    not_after TEXT NOT NULL,     -- ISO 8601 UTC
    names     TEXT NOT NULL      -- the DNS names it is valid for, space-separated
);
