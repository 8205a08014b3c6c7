"""The newer IMAP extensions through imapclient, an independent client: MULTIAPPEND, SORT,
THREAD and OBJECTID; what it stored is read back from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import imapclient

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer


def test_imapclient_multiappend_sort_thread_objectid(
    imap_server: MailServer, mail_user: Account
) -> None:
    bodies = [imap_server.make_message(s) for s in ("banana", "apple", "cherry")]
    with imapclient.IMAPClient(
        "localhost", port=imap_server.port("imaps"), ssl=True, ssl_context=imap_server.ssl_context()
    ) as client:
        client.login(mail_user.address, mail_user.password)
        caps = client.capabilities()
        for cap in (b"MULTIAPPEND", b"SORT", b"THREAD=REFERENCES", b"OBJECTID", b"PREVIEW"):
            assert cap in caps
        client.create_folder("Fruit")
        client.multiappend("Fruit", bodies)  # RFC 3502: one command, three messages
        client.select_folder("Fruit")
        assert client.sort(["SUBJECT"]) == [2, 1, 3]
        assert client.sort(["REVERSE", "SUBJECT"]) == [3, 1, 2]
        # three subjects, three threads, by date (the same here), then in mailbox order
        assert client.thread(algorithm="ORDEREDSUBJECT") == ((1,), (2,), (3,))
        fetched = client.fetch([1, 2], ["EMAILID", "THREADID"])
        emailids = {fetched[n][b"EMAILID"] for n in (1, 2)}
        assert len(emailids) == 2  # different messages, different ids
        client.copy([1], "Archive")
        client.select_folder("Archive")
        copied = client.fetch([1], ["EMAILID"])[1][b"EMAILID"]
        assert copied == fetched[1][b"EMAILID"]  # RFC 8474 §5.1: a copy keeps its EMAILID
        client.logout()
    assert imap_server.bodies(mail_user, "Fruit") == bodies
