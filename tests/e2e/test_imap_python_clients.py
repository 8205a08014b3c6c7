"""IMAP end to end with Python's clients: imaplib (implicit TLS and STARTTLS) and imapclient.

Every client verifies the server's self-signed certificate by name; what a client saw on the wire
is compared with what the store holds, and what a client changed is read back from the store.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import imapclient
import pytest

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer


def _capabilities(client: imaplib.IMAP4) -> set[str]:
    typ, data = client.capability()
    assert typ == "OK"
    return set(data[0].decode().upper().split())


def _first_line(data: Sequence[object]) -> bytes:
    """The response line of the first item of an imaplib result (before any literal)."""
    first = data[0]
    line = first[0] if isinstance(first, tuple) else first
    assert isinstance(line, bytes), data
    return line


def _listed_name(line: object) -> bytes:
    """The mailbox name of one ``* LIST`` line as imaplib returns it."""
    assert isinstance(line, bytes), line
    return re.sub(rb'^\(.*?\) (?:"."|NIL) ', b"", line).strip(b'"')


def _fetched_body(data: Sequence[object]) -> bytes:
    """The literal of the first FETCH response in an imaplib result."""
    for item in data:
        if isinstance(item, tuple):
            body = item[1]
            assert isinstance(body, bytes)
            return body
    raise AssertionError(f"no literal in {data!r}")


def test_imaplib_over_implicit_tls_reads_and_flags(
    imap_server: MailServer, mail_user: Account
) -> None:
    raw = imap_server.make_message("over implicit TLS")
    imap_server.deliver(mail_user, "INBOX", raw)
    port = imap_server.port("imaps")
    with imaplib.IMAP4_SSL("localhost", port, ssl_context=imap_server.ssl_context()) as client:
        assert client.login(mail_user.address, mail_user.password)[0] == "OK"
        typ, listed = client.list()
        assert typ == "OK"
        names = {_listed_name(line) for line in listed}
        assert {b"INBOX", b"Sent", b"Drafts", b"Trash"} <= names
        typ, count = client.select("INBOX")
        assert (typ, count) == ("OK", [b"1"])
        typ, data = client.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        assert _fetched_body(data) == raw  # RFC 9051 §6.4.5: the exact stored octets
        typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "OK"
        assert b"\\Flagged" in _first_line(data)
        client.logout()
    [info] = imap_server.messages(mail_user, "INBOX")
    assert info.flags == {"\\Flagged"}  # BODY.PEEK must not have set \Seen


def test_imaplib_starttls_refuses_login_in_clear_then_works(
    imap_server: MailServer, mail_user: Account
) -> None:
    raw = imap_server.make_message("after STARTTLS")
    imap_server.deliver(mail_user, "INBOX", raw, ["\\Seen"])
    client = imaplib.IMAP4("localhost", imap_server.port("imap"), timeout=10)
    try:
        before = _capabilities(client)
        # RFC 9051 §6.2.3: no cleartext password before TLS on a STARTTLS port.
        assert "LOGINDISABLED" in before
        assert "STARTTLS" in before
        with pytest.raises(imaplib.IMAP4.error):
            client.login(mail_user.address, mail_user.password)
        assert client.starttls(ssl_context=imap_server.ssl_context())[0] == "OK"
        after = _capabilities(client)
        assert "LOGINDISABLED" not in after
        assert "STARTTLS" not in after  # RFC 9051 §6.2.1: TLS cannot be started twice
        assert client.login(mail_user.address, mail_user.password)[0] == "OK"
        assert client.select("INBOX", readonly=True) == ("OK", [b"1"])
        typ, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        assert _fetched_body(data) == raw
        assert b"\\Seen" in _first_line(data)
    finally:
        client.logout()


def test_imaplib_wrong_password_is_refused(imap_server: MailServer, mail_user: Account) -> None:
    with imaplib.IMAP4_SSL(
        "localhost", imap_server.port("imaps"), ssl_context=imap_server.ssl_context()
    ) as client:
        with pytest.raises(imaplib.IMAP4.error) as refused:
            client.login(mail_user.address, "not the password")
        assert "AUTHENTICATIONFAILED" in str(refused.value).upper()  # RFC 5530
        assert client.login(mail_user.address, mail_user.password)[0] == "OK"
        client.logout()


def test_imapclient_folders_append_search_move_expunge(
    imap_server: MailServer, mail_user: Account
) -> None:
    first, second = (imap_server.make_message(s) for s in ("first", "second"))
    with imapclient.IMAPClient(
        "localhost", port=imap_server.port("imaps"), ssl=True, ssl_context=imap_server.ssl_context()
    ) as client:
        client.login(mail_user.address, mail_user.password)
        client.create_folder("Projects/Alpha")
        assert client.folder_exists("Projects/Alpha")
        client.append("Projects/Alpha", first, flags=[imapclient.SEEN])
        client.append("Projects/Alpha", second)
        client.select_folder("Projects/Alpha")
        assert client.search(["UNSEEN"]) == [2]
        assert client.search(["SUBJECT", "first"]) == [1]
        fetched = client.fetch([1, 2], ["RFC822.SIZE", "FLAGS", "BODY.PEEK[]"])
        assert fetched[2][b"BODY[]"] == second
        assert fetched[1][b"RFC822.SIZE"] == len(first)
        client.add_flags([2], [b"$Important"])
        client.move([1], "Archive")
        client.delete_messages([2])
        client.expunge()
        assert client.search(["ALL"]) == []
        client.logout()
    assert "Projects/Alpha" in imap_server.mailbox_names(mail_user)
    assert imap_server.messages(mail_user, "Projects/Alpha") == []
    [moved] = imap_server.messages(mail_user, "Archive")
    assert moved.flags == {"\\Seen"}  # RFC 6851 §3.3: MOVE keeps the flags
    assert imap_server.bodies(mail_user, "Archive") == [first]


def test_imapclient_starttls_status_and_special_use(
    imap_server: MailServer, mail_user: Account
) -> None:
    for subject in ("one", "two", "three"):
        imap_server.deliver(mail_user, "INBOX", imap_server.make_message(subject))
    client = imapclient.IMAPClient("localhost", port=imap_server.port("imap"), ssl=False)
    try:
        client.starttls(imap_server.ssl_context())
        client.login(mail_user.address, mail_user.password)
        status = client.folder_status("INBOX", [b"MESSAGES", b"UNSEEN", b"UIDNEXT"])
        assert status[b"MESSAGES"] == 3
        assert status[b"UNSEEN"] == 3
        assert status[b"UIDNEXT"] == imap_server.mailbox(mail_user, "INBOX").uidnext
        # RFC 6154 §2: clients find the special-use mailboxes by their attributes.
        uses = {
            flag: name
            for flags, _, name in client.list_folders()
            for flag in flags
            if flag in (b"\\Sent", b"\\Trash", b"\\Drafts")
        }
        assert uses == {b"\\Sent": "Sent", b"\\Trash": "Trash", b"\\Drafts": "Drafts"}
    finally:
        client.logout()
