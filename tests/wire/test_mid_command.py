"""Each core says when part of a command has arrived and the rest is on its way (``mid_command``),
which the driver answers by acknowledging the client's segments at once (net/driver.py). SMTP's
is in smtp/test_smtp_data.py."""

from __future__ import annotations

from courriel.wire.imap import Connection, LiteralRequest, NeedData
from courriel.wire.imap import commands as c
from courriel.wire.managesieve.commands import NeedData as NeedDataS
from courriel.wire.managesieve.commands import PutScript
from courriel.wire.managesieve.core import ManageSieveConfig, ManageSieveConnection
from courriel.wire.pop3 import Capa, Pop3Config, Pop3Connection
from courriel.wire.pop3 import NeedData as NeedData3


def test_imap_partial_line_literal_and_the_line_after_it() -> None:
    conn = Connection()
    assert not conn.mid_command
    conn.receive_data(b"a1 NO")
    assert isinstance(conn.next_event(), NeedData) and conn.mid_command  # half a line
    conn.receive_data(b"OP\r\n")
    assert conn.next_event() == c.Noop("a1") and not conn.mid_command
    conn.receive_data(b"a2 LOGIN {3}\r\n")
    assert isinstance(conn.next_event(), LiteralRequest)
    conn.accept_literal()  # "+ Ready": the literal is what comes next
    assert isinstance(conn.next_event(), NeedData) and conn.mid_command
    conn.receive_data(b"bob")  # the literal, and its CRLF still to come (imaplib's two sends)
    assert isinstance(conn.next_event(), NeedData) and conn.mid_command
    conn.receive_data(b" pw\r\n")
    assert conn.next_event() == c.Login("a2", "bob", "pw") and not conn.mid_command


def test_pop3_partial_line() -> None:
    conn = Pop3Connection(Pop3Config())
    conn.receive_data(b"CA")
    assert isinstance(conn.next_event(), NeedData3) and conn.mid_command
    conn.receive_data(b"PA\r\n")
    assert conn.next_event() == Capa()
    assert not conn.mid_command


def test_managesieve_command_waiting_for_its_literal() -> None:
    conn = ManageSieveConnection(ManageSieveConfig(tls_active=True))
    conn.authenticated()
    conn.receive_data(b'PUTSCRIPT "s" {9+}\r\nkeep;')  # four bytes of the script to come
    assert isinstance(conn.next_event(), NeedDataS) and conn.mid_command
    conn.receive_data(b" # x\r\n")
    assert conn.next_event() == PutScript("s", b"keep; # x")
    assert not conn.mid_command
