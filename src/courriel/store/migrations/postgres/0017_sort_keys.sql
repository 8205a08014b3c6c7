-- The keys SORT and THREAD compare (RFC 5256, RFC 5957), reduced from the message's parse at
-- append (courriel.mail.sortkeys): base subject, first addresses, sent date, message ids.
-- NULL for messages stored before this version; the store fills them on first use.
ALTER TABLE messages ADD COLUMN sort_keys TEXT;
-- SAVEDATE (RFC 8514): when the message was stored in this mailbox (append, copy, move), ISO
-- 8601; NULL for messages stored before this version, which FETCH answers with NIL.
ALTER TABLE messages ADD COLUMN savedate TEXT;
-- PREVIEW (RFC 8970): the text made on the first FETCH PREVIEW and kept; NULL until then.
ALTER TABLE messages ADD COLUMN preview TEXT;
