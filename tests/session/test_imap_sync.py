"""Sync between sessions of one user over real sockets: IDLE, QRESYNC, and when EXPUNGE may go.

The server runs in its own thread and event loop (``courriel.app.serve`` with the IMAP handlers)
so the blocking clients here (``imaplib`` and a line-level ``Raw`` client for IDLE, which
imaplib of Python 3.11 cannot do) talk to it exactly as mail programs do.
"""

from __future__ import annotations

import imaplib
import re
import time

from courriel.testing.imap import Raw, Server, message, wait_for


def fetch_view(client: imaplib.IMAP4_SSL) -> list[tuple[int, int, str]]:
    """(seq, uid, flags) of every message, as one client sees them."""
    client.noop()
    client.untagged_responses.pop("FETCH", None)  # unsolicited ones, already applied
    typ, data = client.fetch("1:*", "(UID FLAGS)")
    assert typ == "OK"
    out = []
    for item in data:
        assert isinstance(item, bytes)
        m = re.match(
            rb"(\d+) (?:FETCH )?\((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))", item
        )
        assert m is not None, item
        uid = m.group(2) or m.group(5)
        flags = m.group(3) if m.group(3) is not None else m.group(4)
        out.append((int(m.group(1)), int(uid), stored_flags(flags.decode())))
    return out


def stored_flags(flags: str) -> str:
    """The flags sorted, without \\Recent: it is per session (RFC 3501 §2.3.2), so two
    sessions agree on every flag but that one."""
    return " ".join(sorted(f for f in flags.split() if f != "\\Recent"))


def raw_view(raw: Raw) -> list[tuple[int, int, str]]:
    out = []
    for line in raw.command("FETCH 1:* (UID FLAGS)")[:-1]:
        m = re.match(r"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line)
        if m is None:
            m2 = re.match(r"\* (\d+) FETCH \(FLAGS \(([^)]*)\) UID (\d+)\)", line)
            assert m2 is not None, line
            out.append((int(m2.group(1)), int(m2.group(3)), stored_flags(m2.group(2))))
            continue
        out.append((int(m.group(1)), int(m.group(2)), stored_flags(m.group(3))))
    return out


def test_idling_session_sees_every_change_of_another_session(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 3)
    with server.imaplib_and_raw() as (a, b):
        assert b.command("SELECT INBOX")[-1].startswith("t2 OK")
        assert a.select("INBOX")[0] == "OK"
        b.send("i1 IDLE")
        assert b.line().startswith("+ ")

        assert a.append("INBOX", "", imaplib.Time2Internaldate(time.time()), message(9))[0] == "OK"
        wait_for(b, r"\* 4 EXISTS")
        assert a.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
        wait_for(b, r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Recent\)\)")  # b selected first
        assert a.store("2", "+FLAGS", r"(\Deleted)")[0] == "OK"
        wait_for(b, r"\* 2 FETCH \(UID 2 FLAGS \(\\Deleted \\Recent\)\)")
        assert a.expunge()[0] == "OK"
        wait_for(b, r"\* 2 EXPUNGE")
        assert a.uid("MOVE", "1", "Archive")[0] == "OK"
        wait_for(b, r"\* 1 EXPUNGE")

        b.send("DONE")
        assert b.until("i1")[-1] == "i1 OK IDLE terminated"
        seen_by_b = raw_view(b)
        assert seen_by_b == fetch_view(a)
        assert [uid for _, uid, _ in seen_by_b] == [3, 4]


def test_qresync_reconnect_gets_exactly_what_changed(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 4)
    first = server.raw()
    first.login()
    assert first.command("ENABLE QRESYNC")[0] == "* ENABLED QRESYNC"
    lines = first.command("SELECT INBOX")
    validity = int(
        next(re.search(r"UIDVALIDITY (\d+)", ln) for ln in lines if "UIDVALIDITY" in ln).group(1)
    )  # type: ignore[union-attr]
    modseq = int(
        next(re.search(r"HIGHESTMODSEQ (\d+)", ln) for ln in lines if "HIGHESTMODSEQ" in ln).group(
            1
        )
    )  # type: ignore[union-attr]
    first.command("LOGOUT")
    first.close()

    other = server.imaplib()
    other.select("INBOX")
    other.uid("STORE", "2", "+FLAGS", r"(\Seen)")
    other.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    other.expunge()
    other.logout()

    again = server.raw()
    again.login()
    again.command("ENABLE QRESYNC")
    lines = again.command(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:4))")
    assert "* VANISHED (EARLIER) 3" in lines
    changed = [ln for ln in lines if " FETCH " in ln]
    assert len(changed) == 1
    assert re.fullmatch(r"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", changed[0])
    assert "* 3 EXISTS" in lines
    assert lines[-1] == "t3 OK [READ-WRITE] SELECT completed"
    # A stale UIDVALIDITY gets a plain SELECT: no VANISHED, no FETCH.
    lines = again.command(f"SELECT INBOX (QRESYNC ({validity + 1} {modseq}))")
    assert not [ln for ln in lines if "VANISHED" in ln or " FETCH " in ln]
    again.close()


def expunge_elsewhere(a: imaplib.IMAP4_SSL, b: Raw, seq: str) -> None:
    """With INBOX selected in both, ``a`` expunges message ``seq``; ``b`` has not been told yet."""
    b.command("SELECT INBOX")
    a.select("INBOX")
    a.store(seq, "+FLAGS", r"(\Deleted)")
    a.expunge()
    time.sleep(0.2)  # let B's session take the change in


def test_expunge_is_held_back_during_fetch_store_and_search(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 3)
    with server.imaplib_and_raw() as (a, b):
        expunge_elsewhere(a, b, "1")
        for cmd in ("FETCH 1:3 (FLAGS)", "STORE 3 +FLAGS (\\Seen)", "SEARCH ALL"):
            lines = b.command(cmd)
            assert lines[-1].split()[1] == "OK", lines
            assert not [ln for ln in lines if ln.endswith("EXPUNGE")], (cmd, lines)
        # The numbers B used still mean what B meant: 3 is still the third message.
        assert b.command("FETCH 3 (UID)")[0] == "* 3 FETCH (UID 3)"
        lines = b.command("NOOP")
        assert lines == ["* 1 EXPUNGE", "t7 OK NOOP completed"]
        assert raw_view(b) == fetch_view(a)


def test_uid_fetch_may_carry_the_expunge(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 2)
    with server.imaplib_and_raw() as (a, b):
        expunge_elsewhere(a, b, "2")
        lines = b.command("UID FETCH 1:* (FLAGS)")
        # RFC 9051 §7.5.1: UID FETCH is a different command from FETCH; EXPUNGE may be sent.
        assert "* 2 EXPUNGE" in lines
        assert lines[-1] == "t3 OK UID FETCH completed"
