-- \Recent (RFC 3501 §2.3.2): the highest UID some IMAP4rev1 session has already been given as
-- recent in each mailbox (courriel.store.sql.recent). Messages already there when this
-- migration runs are not recent: they were seen before \Recent existed.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1;
