-- Each hosted domain's own answer to mail failing its sender's DMARC policy, and whether it
-- honours trusted ARC sealers: the twin of migrations/sqlite/0018_mailauth.sql.

CREATE TABLE domain_policies (
    domain_id     BIGINT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    on_reject     TEXT,     -- reject | junk | inbox
    on_quarantine TEXT,     -- junk | inbox
    arc_override  INTEGER   -- 1 | 0
);
