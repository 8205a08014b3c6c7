-- The keys SORT and THREAD compare (RFC 5256, RFC 5957), reduced from the message's parse at
-- append (courriel.mail.sortkeys): base subject, first addresses, sent date, message ids.
-- NULL for messages stored before this version; the store fills them on first use.
ALTER TABLE messages ADD COLUMN sort_keys TEXT;
