"""QUOTA (RFC 9208) with the STORAGE, MESSAGE and MAILBOX resources, through imaplib."""

from __future__ import annotations

import imaplib
import time

from courriel.testing.imap import USER, Server, message


def test_limits_are_reported_and_enforced(server: Server) -> None:
    user_id = server.add_user()
    store = server.running.app.store
    server.call(store.set_quota(USER, 1024 * 1024))
    boxes = len(server.call(store.list_mailboxes(user_id)))
    server.call(store.set_count_quota(USER, 3, boxes + 1))
    server.deliver(user_id, 2)
    client = server.imaplib()
    try:
        caps = client.capability()[1][0].split()
        assert {b"QUOTA", b"QUOTA=RES-MESSAGE", b"QUOTA=RES-MAILBOX"} <= set(caps)
        typ, data = client.getquotaroot("INBOX")
        assert typ == "OK"
        assert data == [
            [b'INBOX ""'],
            [f'"" (STORAGE 1 1024 MESSAGE 2 3 MAILBOX {boxes} {boxes + 1})'.encode()],
        ]
        now = imaplib.Time2Internaldate(time.time())
        assert client.append("INBOX", "", now, message(3))[0] == "OK"
        typ, data = client.append("INBOX", "", now, message(4))
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")  # RFC 9208 §5.2
        client.select("INBOX")
        typ, data = client.copy("1", "Archive")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        assert client.uid("MOVE", "1", "Archive")[0] == "OK"  # a move adds no message
        assert client.create("One")[0] == "OK"
        typ, data = client.create("Two")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")  # RFC 9208 §5.3
        typ, data = client.getquota('""')
        assert data == [f'"" (STORAGE 1 1024 MESSAGE 3 3 MAILBOX {boxes + 1} {boxes + 1})'.encode()]
        typ, data = client.setquota('""', "(STORAGE 10)")
        assert typ == "NO" and data[0].startswith(b"[NOPERM]")  # RFC 9208 §4.5: admins only
    finally:
        client.logout()
