"""URLAUTH (RFC 4467): GENURLAUTH, URLFETCH and RESETKEY with the INTERNAL mechanism."""

from __future__ import annotations

import re

from courriel.testing.imap import USER, Raw, Server, message

BOB = "bob@example.test"
BASE = "imap://alice%40example.test@mail.example.test/INBOX"


def genurlauth(raw: Raw, url: str, mechanism: str = "INTERNAL") -> str:
    lines = raw.command(f'GENURLAUTH "{url}" {mechanism}')
    assert lines[-1].endswith("OK GENURLAUTH completed"), lines
    m = re.fullmatch(r'\* GENURLAUTH "?([^" ]+)"?', lines[0])
    assert m is not None, lines
    return m[1]


def urlfetch(raw: Raw, url: str) -> bytes | None:
    raw.send(f'uf URLFETCH "{url}"')
    head = raw.line()
    assert head.startswith((f'* URLFETCH "{url}" ', f"* URLFETCH {url} ")), head
    if head.endswith(" NIL"):
        data = None
    else:
        size = int(re.search(r"\{(\d+)\}$", head)[1])  # type: ignore[index]
        data = raw.file.read(size)
        assert raw.line() == ""
    assert raw.line() == "uf OK URLFETCH completed"
    return data


def test_sign_fetch_and_reset(server: Server) -> None:
    alice_id = server.add_user()
    server.add_user(BOB)
    server.deliver(alice_id, 1)
    alice, bob = server.raw_as(USER), server.raw_as(BOB)
    try:
        signed = genurlauth(alice, f"{BASE}/;uid=1;urlauth=authuser")
        assert re.fullmatch(
            re.escape(f"{BASE}/;uid=1;urlauth=authuser") + ":internal:[0-9a-f]{64}", signed
        )
        whole = urlfetch(alice, signed)
        assert (
            whole is not None and whole.startswith(b"From: Bob") and whole.endswith(message(0)[-8:])
        )
        assert urlfetch(bob, signed) == whole  # authuser: any user of this server
        only_alice = genurlauth(alice, f"{BASE}/;uid=1;urlauth=user+alice%40example.test")
        assert urlfetch(bob, only_alice) is None
        assert urlfetch(alice, only_alice) == whole
        submit = genurlauth(alice, f"{BASE}/;uid=1;urlauth=submit+alice%40example.test")
        assert urlfetch(alice, submit) is None  # for the submission server (BURL) only
        # The user part may also be the local part, with the mail domain as the host.
        short = genurlauth(alice, "imap://alice@example.test/INBOX/;uid=1;urlauth=authuser")
        assert urlfetch(bob, short) == whole
        text = genurlauth(alice, f"{BASE}/;uid=1/;section=TEXT/;partial=0.4;urlauth=anonymous")
        assert urlfetch(bob, text) == b"Body"
        expired = genurlauth(alice, f"{BASE}/;uid=1;expire=2001-01-01T00:00:00Z;urlauth=anonymous")
        assert urlfetch(alice, expired) is None
        forged = signed[:-4] + ("0000" if not signed.endswith("0000") else "1111")
        assert urlfetch(alice, forged) is None
        assert urlfetch(alice, f"{BASE}/;uid=9;urlauth=authuser:internal:" + "0" * 64) is None
        # RESETKEY voids every URL signed before; a new one works.
        assert alice.command("RESETKEY INBOX INTERNAL")[-1].endswith("OK RESETKEY completed")
        assert urlfetch(bob, signed) is None
        again = genurlauth(alice, f"{BASE}/;uid=1;urlauth=authuser")
        assert again != signed and urlfetch(bob, again) == whole
        assert alice.command("RESETKEY")[-1].endswith("OK RESETKEY completed")
        assert urlfetch(bob, again) is None
    finally:
        alice.close()
        bob.close()


def test_what_cannot_be_signed(server: Server) -> None:
    server.add_user()
    server.add_user(BOB)
    bob = server.raw_as(BOB)
    try:
        for url, mechanism in [
            (f"{BASE}/;uid=1;urlauth=authuser", "INTERNAL"),  # Alice's mailbox
            ("imap://bob%40example.test@h/Nowhere/;uid=1;urlauth=authuser", "INTERNAL"),
            ("imap://bob%40example.test@h/INBOX/;uid=1;urlauth=authuser", "XSECRET"),
            (
                "imap://bob%40example.test@h/INBOX/;uid=1;urlauth=authuser:internal:" + "0" * 32,
                "INTERNAL",
            ),
            ("imap://bob%40example.test@h/INBOX/;uid=1", "INTERNAL"),  # no ;URLAUTH=
            ("http://example.test/", "INTERNAL"),
        ]:
            reply = bob.command(f'GENURLAUTH "{url}" {mechanism}')[-1]
            assert " NO " in reply, (url, reply)
        assert "NONEXISTENT" in bob.command("RESETKEY Nowhere")[-1]
        assert " NO " in bob.command("RESETKEY INBOX XSECRET")[-1]
        assert urlfetch(bob, "not a url") is None
    finally:
        bob.close()
