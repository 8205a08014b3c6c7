"""RFC 4314: parsing the ACL commands and reading and writing rights strings."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import acl
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command


def parse(line: bytes) -> c.Command:
    return parse_command([line], [], limits=Limits(), utf8=False)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (
            b"a SETACL Invoices bob@example.test lrs",
            c.SetAcl("a", "Invoices", "bob@example.test", "lrs"),
        ),
        (b'a setacl "Invoices" anyone "-w"', c.SetAcl("a", "Invoices", "anyone", "-w")),
        (b"a DELETEACL inbox bob@example.test", c.DeleteAcl("a", "INBOX", "bob@example.test")),
        (b"a GETACL INBOX", c.GetAcl("a", "INBOX")),
        (b"a LISTRIGHTS Work anyone", c.ListRights("a", "Work", "anyone")),
        (b"a MYRIGHTS &AMk-t&AOk-", c.MyRights("a", "\u00c9t\u00e9")),
    ],
)
def test_commands(line: bytes, command: c.Command) -> None:
    assert parse(line) == command


@pytest.mark.parametrize(
    "line",
    [
        b"a SETACL Invoices bob",  # no rights
        b"a SETACL Invoices",
        b"a GETACL",
        b"a MYRIGHTS INBOX extra",
        b"a DELETEACL INBOX (bob)",
        b"a LISTRIGHTS INBOX",
        b"a UID GETACL INBOX",
    ],
)
def test_malformed_commands_are_bad(line: bytes) -> None:
    with pytest.raises(ProtocolError) as e:
        parse(line)
    assert e.value.reply.startswith(b"a BAD ")


@pytest.mark.parametrize(
    ("text", "mode", "rights"),
    [
        ("lrs", "=", "lrs"),
        ("srl", "=", "lrs"),
        ("+w", "+", "w"),
        ("-te", "-", "te"),
        ("c", "=", "k"),  # RFC 4314 §2.1.1: the virtual rights stand for their members
        ("d", "=", "xte"),
        ("", "=", ""),
    ],
)
def test_mod_rights(text: str, mode: str, rights: str) -> None:
    assert acl.parse_mod_rights(text) == (mode, rights)


@pytest.mark.parametrize("text", ["lrz", "1", "+l r", "L"])
def test_unknown_rights_are_refused(text: str) -> None:
    with pytest.raises(acl.BadRights):
        acl.parse_mod_rights(text)


def test_apply_and_virtual_rights() -> None:
    assert acl.apply_mod("lr", "+", "sw") == "lrsw"
    assert acl.apply_mod("lrsw", "-", "rz") == "lsw"
    assert acl.apply_mod("lrsw", "=", "i") == "i"
    assert acl.with_virtual("lrk") == "lrkc"
    assert acl.with_virtual("lre") == "lred"
    assert acl.with_virtual("lr") == "lr"


def test_responses() -> None:
    assert acl.acl_response("Invoices", [("anyone", "l"), ("bob@example.test", "lrsx")]) == (
        b"* ACL Invoices anyone l bob@example.test lrsxd\r\n"
    )
    assert acl.myrights_response("INBOX", "") == b'* MYRIGHTS INBOX ""\r\n'
    assert acl.listrights_response("A b", "anyone", "", ["l", "r"]) == (
        b'* LISTRIGHTS "A b" anyone "" l r\r\n'
    )
