-- Each hosted domain's own answer to mail failing its sender's DMARC policy, and whether it
-- honours trusted ARC sealers (courriel.store.sql.domainpolicy). NULL: the [mailauth] setting.

CREATE TABLE domain_policies (
    domain_id     INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    on_reject     TEXT,     -- reject | junk | inbox
    on_quarantine TEXT,     -- junk | inbox
    arc_override  INTEGER,  -- 1 | 0
    allow_from    TEXT      -- From domains delivered despite a DMARC failure, comma-separated
);

-- DMARC evaluations of received mail, kept until the daily aggregate report for their policy
-- domain is sent (RFC 7489 §7.2; courriel.store.sql.dmarcreports). ``data`` is the JSON the
-- report module reads; ``received`` is seconds since the epoch.
CREATE TABLE dmarc_evaluations (
    id            INTEGER PRIMARY KEY,
    policy_domain TEXT NOT NULL,
    received      INTEGER NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX dmarc_evaluations_domain ON dmarc_evaluations (policy_domain, received);

-- A pending DKIM key (published before it signs): how long, once it signs, the key it replaces
-- stays published (courriel.store.sql.dkim.activate).
ALTER TABLE dkim_keys ADD COLUMN grace_seconds INTEGER;
