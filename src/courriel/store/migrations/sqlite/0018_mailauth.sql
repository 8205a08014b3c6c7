-- Each hosted domain's own answer to mail failing its sender's DMARC policy, and whether it
-- honours trusted ARC sealers (courriel.store.sql.domainpolicy). NULL: the [mailauth] setting.

CREATE TABLE domain_policies (
    domain_id     INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    on_reject     TEXT,     -- reject | junk | inbox
    on_quarantine TEXT,     -- junk | inbox
    arc_override  INTEGER   -- 1 | 0
);
