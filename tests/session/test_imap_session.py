"""IMAP session behaviour over real sockets that transcripts cannot show: COMPRESS=DEFLATE,
timeouts, shutdown during IDLE, per-user session limits, quotas, and a selected mailbox
deleted by another session."""

from __future__ import annotations

import socket
import time
import zlib
from pathlib import Path

import pytest

from courriel.testing.imap import PASSWORD, USER, Raw, Server, message
from courriel.wire.imap import mutf7


def test_compress_deflate_carries_the_session(server: Server) -> None:
    server.add_user()
    raw = server.raw()
    raw.login()
    assert raw.command("COMPRESS DEFLATE") == ["t2 OK DEFLATE active"]  # RFC 4978 §3
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    inflate = zlib.decompressobj(-15)
    commands = b"c1 CAPABILITY\r\nc2 COMPRESS DEFLATE\r\nc3 LOGOUT\r\n"
    raw.sock.sendall(deflate.compress(commands) + deflate.flush(zlib.Z_SYNC_FLUSH))
    received = b""
    raw.sock.settimeout(5)
    while not received.endswith(b"c3 OK LOGOUT completed\r\n"):
        chunk = raw.sock.recv(65536)
        assert chunk, received
        received += inflate.decompress(chunk)
    lines = received.decode().split("\r\n")
    assert lines[0].startswith("* CAPABILITY IMAP4rev1")
    assert "COMPRESS=DEFLATE" not in lines[0]  # not offered once active
    assert "c2 NO [COMPRESSIONACTIVE] DEFLATE already active" in lines
    raw.close()


def test_shutdown_ends_idle_with_bye(server: Server) -> None:
    server.add_user()
    raw = server.raw()
    raw.login()
    raw.command("SELECT INBOX")
    raw.send("i1 IDLE")
    assert raw.line().startswith("+ ")
    server.request_stop()
    assert raw.line(timeout=5) == "* BYE server shutting down"
    with pytest.raises(ConnectionError):
        raw.line(timeout=5)
    raw.close()
    server.stop()


def test_unauthenticated_connection_times_out(tmp_path: Path) -> None:
    with Server.started(tmp_path, login_timeout=0.3) as srv:
        raw = srv.raw()
        started = time.monotonic()
        assert raw.line(timeout=5) == "* BYE No login, closing"
        assert time.monotonic() - started < 3
        with pytest.raises(ConnectionError):
            raw.line(timeout=5)
        raw.close()


def test_authenticated_connection_is_logged_out_when_idle(tmp_path: Path) -> None:
    with Server.started(tmp_path, autologout=0.5) as srv:
        srv.add_user()
        raw = srv.raw()
        raw.login()  # the shorter login timeout no longer applies
        assert raw.line(timeout=5) == "* BYE Autologout; idle for too long, closing"
        raw.close()


def test_sessions_per_user_are_limited(tmp_path: Path) -> None:
    with Server.started(tmp_path, sessions_per_user=2) as srv:
        srv.add_user()
        with srv.sessions(2) as (first, _):
            extra = srv.raw()
            try:
                reply = extra.command(f"LOGIN {USER} {PASSWORD}")
                assert reply == ["t1 NO [LIMIT] Too many sessions for this user"]
                first.command("LOGOUT")
                time.sleep(0.2)  # the server ends the first session after its BYE
                assert extra.command(f"LOGIN {USER} {PASSWORD}")[-1].startswith("t2 OK ")
            finally:
                extra.close()


def test_quota_is_reported_and_enforced(server: Server) -> None:
    user_id = server.add_user()
    server.call(server.running.app.store.set_quota(USER, 10 * 1024))
    server.deliver(user_id, 1)
    raw = server.raw()
    raw.login()
    lines = raw.command("GETQUOTAROOT INBOX")
    assert lines[0] == '* QUOTAROOT INBOX ""'
    assert lines[1] == '* QUOTA "" (STORAGE 1 10)'  # RFC 9208: units of 1024 octets
    big = b"Subject: big\r\n\r\n" + b"x" * 12000 + b"\r\n"
    raw.send(f"a1 APPEND INBOX {{{len(big)}+}}")
    raw.sock.sendall(big + b"\r\n")
    assert raw.until("a1") == ["a1 NO [OVERQUOTA] Over quota"]
    assert raw.command("STATUS INBOX (MESSAGES)")[0] == "* STATUS INBOX (MESSAGES 1)"
    raw.close()


def test_deleting_a_mailbox_selected_elsewhere_ends_that_session(server: Server) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        assert a.command("CREATE Work")[-1].startswith("t2 OK [MAILBOXID (M")
        b.command("SELECT Work")
        b.send("i1 IDLE")
        assert b.line().startswith("+ ")
        assert a.command("DELETE Work")[-1] == "t3 OK DELETE completed"
        assert b.line(timeout=2) == "* BYE Selected mailbox was deleted"
        with pytest.raises(ConnectionError):
            b.line(timeout=5)


def test_idle_reports_vanished_once_qresync_is_enabled(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 2)
    with server.sessions(2) as (a, b):
        b.command("ENABLE QRESYNC")
        b.command("SELECT INBOX")
        a.command("SELECT INBOX")
        b.send("i1 IDLE")
        assert b.line().startswith("+ ")
        a.command("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        # b selected first: the two messages are \\Recent in b (RFC 3501 §2.3.2)
        assert b.line(timeout=2) == "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent) MODSEQ (4))"
        a.command("EXPUNGE")
        assert b.line(timeout=2) == "* VANISHED 1"  # RFC 7162 §3.2.10
        b.send("DONE")
        assert b.until("i1") == ["i1 OK IDLE terminated"]


def test_new_keywords_are_announced_to_other_sessions(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 1)
    with server.sessions(2) as (a, b):
        a.command("SELECT INBOX")
        b.command("SELECT INBOX")
        a.command("STORE 1 +FLAGS.SILENT ($Important)")
        time.sleep(0.2)
        lines = b.command("NOOP")
        # RFC 9051 §7.3.5: FLAGS again when the set of flags in use grew.
        assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important)"
        assert "* 1 FETCH (UID 1 FLAGS ($Important))" in lines


def test_unicode_mailbox_names_reach_a_rev1_client_in_modified_utf7(server: Server) -> None:
    server.add_user()
    raw = server.raw()
    raw.login()
    name = mutf7.encode("Réunions/日本").decode()
    assert raw.command(f'CREATE "{name}"')[-1].startswith("t2 OK [MAILBOXID (M")
    lines = raw.command('LIST "" "R*"')
    assert f'* LIST (\\HasChildren) "/" {mutf7.encode("Réunions").decode()}' in lines
    assert f'* LIST (\\HasNoChildren) "/" {name}' in lines
    raw.close()


def test_plain_143_offers_no_password_mechanism(server: Server) -> None:
    host, port = server.address("imap")
    with socket.create_connection((host, port), timeout=5) as sock:
        raw = Raw(sock)
        assert "LOGINDISABLED" in raw.greeting
        assert "AUTH=" not in raw.greeting
        assert raw.command(f"LOGIN {USER} {PASSWORD}")[0].startswith("t1 NO [PRIVACYREQUIRED]")
        raw.close()
    assert message(1).startswith(b"From: ")


def test_clear_text_after_compress_ends_the_connection(server: Server) -> None:
    server.add_user()
    raw = server.raw()
    raw.login()
    assert raw.command("COMPRESS DEFLATE") == ["t2 OK DEFLATE active"]
    raw.sock.sendall(b"c1 NOOP\r\n")  # RFC 4978 §4: everything after the OK is compressed
    raw.sock.settimeout(5)
    assert raw.sock.recv(100) == b""
    raw.close()


def _recent(lines: list[str]) -> list[int]:
    return [int(ln.split()[1]) for ln in lines if ln.startswith("* ") and ln.endswith(" RECENT")]


def test_each_message_is_recent_in_one_session_only(server: Server) -> None:
    # RFC 3501 §2.3.2: the first session to select the mailbox gets the messages as \Recent;
    # one that arrives later goes to the one session that learns of it first.
    user_id = server.add_user()
    server.deliver(user_id, 2)
    with server.sessions(2) as (a, b):
        assert _recent(a.command("SELECT INBOX")) == [2]
        assert _recent(b.command("SELECT INBOX")) == [0]
        assert b.command("SEARCH RECENT")[0] == "* SEARCH"
        server.deliver(user_id, 1)
        got_a = _recent(a.command("NOOP"))
        got_b = _recent(b.command("NOOP"))
        # Each saw the new message (EXISTS and RECENT); the claim went to exactly one.
        assert got_a in ([3], [2]) and got_b in ([1], [0])
        assert (got_a == [3]) != (got_b == [1])
        a_recent = a.command("SEARCH RECENT")[0]
        b_recent = b.command("SEARCH RECENT")[0]
        if got_a == [3]:
            assert (a_recent, b_recent) == ("* SEARCH 1 2 3", "* SEARCH")
        else:
            assert (a_recent, b_recent) == ("* SEARCH 1 2", "* SEARCH 3")
