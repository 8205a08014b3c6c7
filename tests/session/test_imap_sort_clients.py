"""SORT, THREAD, search contexts and MULTIAPPEND over real sockets: Python's imaplib as the
client, a second session making changes, and a quota that a MULTIAPPEND would pass."""

from __future__ import annotations

from courriel.testing.imap import USER, Server, message


def test_imaplib_sorts_and_threads(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 3)  # subjects "Note 0", "Note 1", "Note 2", one second apart
    client = server.imaplib()
    try:
        caps = client.capability()[1][0].split()
        assert b"SORT" in caps and b"THREAD=REFERENCES" in caps and b"MULTIAPPEND" in caps
        client.select("INBOX")
        typ, data = client.sort("(REVERSE SUBJECT)", "UTF-8", "ALL")
        assert (typ, data) == ("OK", [b"3 2 1"])
        typ, data = client.uid("SORT", "(DISPLAYFROM SIZE)", "UTF-8", "ALL")
        assert (typ, data) == ("OK", [b"1 2 3"])
        typ, data = client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
        assert (typ, data) == ("OK", [b"(1)(2)(3)"])
        typ, data = client.thread("REFERENCES", "UTF-8", "SUBJECT", '"Note 1"')
        assert (typ, data) == ("OK", [b"(2)"])
    finally:
        client.logout()


def test_a_search_context_learns_of_another_sessions_message_during_idle(
    server: Server,
) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        a.command("SELECT INBOX")
        assert a.command("UID SEARCH RETURN (UPDATE) UNSEEN") == [
            '* ESEARCH (TAG "t3") UID',
            "t3 OK UID SEARCH completed",
        ]
        a.send("i1 IDLE")
        assert a.line().startswith("+ ")
        raw = message(7)
        b.send(f"x1 APPEND INBOX {{{len(raw)}+}}")
        b.sock.sendall(raw + b"\r\n")
        assert b.until("x1")[-1].startswith("x1 OK [APPENDUID ")
        assert a.line(timeout=5) == "* 1 EXISTS"
        assert a.line(timeout=5) == "* 1 RECENT"
        assert a.line(timeout=5) == '* ESEARCH (TAG "t3") UID ADDTO (0 1)'
        a.send("DONE")
        assert a.until("i1") == ["i1 OK IDLE terminated"]


def test_multiappend_is_all_or_none(server: Server) -> None:
    server.add_user()
    server.call(server.running.app.store.set_quota(USER, 10 * 1024))
    raw = server.raw()
    raw.login()
    small = b"Subject: small\r\n\r\nx\r\n"
    big = b"Subject: big\r\n\r\n" + b"x" * 12000 + b"\r\n"
    raw.send(f"a1 APPEND INBOX {{{len(small)}+}}")
    raw.sock.sendall(small + f" {{{len(big)}+}}\r\n".encode() + big + b"\r\n")
    assert raw.until("a1") == ["a1 NO [OVERQUOTA] Over quota"]  # RFC 3502 §6.3.11
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == "* STATUS INBOX (MESSAGES 0)"
    raw.send(f"a2 APPEND INBOX {{{len(small)}+}}")
    raw.sock.sendall(small + f" (\\Seen) {{{len(small)}+}}\r\n".encode() + small + b"\r\n")
    assert raw.until("a2")[-1].startswith("a2 OK [APPENDUID ")
    assert raw.command("STATUS INBOX (MESSAGES UNSEEN)")[0] == (
        "* STATUS INBOX (MESSAGES 2 UNSEEN 1)"
    )
    raw.close()
