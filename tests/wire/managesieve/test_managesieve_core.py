"""The ManageSieve core (RFC 5804) without I/O: commands, strings, literals, states, errors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.wire.errors import ProtocolError
from courriel.wire.managesieve import commands as c
from courriel.wire.managesieve import responses as r
from courriel.wire.managesieve.core import ManageSieveConfig, ManageSieveConnection, State


def authed() -> ManageSieveConnection:
    conn = ManageSieveConnection(ManageSieveConfig(tls_active=True))
    conn.authenticated()
    return conn


def events(conn: ManageSieveConnection, data: bytes) -> list[c.Event]:
    conn.receive_data(data)
    out: list[c.Event] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if isinstance(event, c.NeedData | c.Paused):
            return out


def test_commands_with_quoted_strings_literals_and_numbers() -> None:
    conn = authed()
    got = events(
        conn,
        b'PUTSCRIPT "my \\"x\\"" {12+}\r\nkeep;\r\nstop;\r\n'
        b'havespace "a" 5000\r\n'
        b'RENAMESCRIPT "a" {1}\r\nb\r\n'
        b"LISTSCRIPTS\r\n"
        b'SETACTIVE ""\r\n'
        b'NOOP "t1"\r\n',
    )
    assert got == [
        c.PutScript('my "x"', b"keep;\r\nstop;"),
        c.HaveSpace("a", 5000),
        c.RenameScript("a", "b"),
        c.ListScripts(),
        c.SetActive(""),
        c.Noop("t1"),
        c.NeedData(),
    ]


def test_a_command_split_anywhere_waits_for_the_rest() -> None:
    data = b'PUTSCRIPT "s" {5+}\r\nkeep;\r\n'
    for cut in range(1, len(data)):
        conn = authed()
        assert events(conn, data[:cut]) == [c.NeedData()]
        assert events(conn, data[cut:]) == [c.PutScript("s", b"keep;"), c.NeedData()]


def test_states_decide_what_is_allowed() -> None:
    conn = ManageSieveConnection(ManageSieveConfig(tls_active=True))
    conn.receive_data(b"LISTSCRIPTS\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.reply == b'NO "LISTSCRIPTS is not allowed when not authenticated"\r\n'
    assert not info.value.fatal
    initial = base64.b64encode(b"\0ann@example.org\0pw")
    got = events(conn, b'AUTHENTICATE "PLAIN" "' + initial + b'"\r\n')
    assert got == [c.Authenticate("PLAIN", b"\0ann@example.org\0pw"), c.NeedData()]
    assert conn.state is State.SASL
    conn.authenticated()
    assert events(conn, b"UNAUTHENTICATE\r\n") == [c.Unauthenticate(), c.NeedData()]
    assert conn.state is State.NOT_AUTH


def test_sasl_responses_and_cancel() -> None:
    conn = ManageSieveConnection(ManageSieveConfig(tls_active=True))
    assert events(conn, b'AUTHENTICATE "LOGIN"\r\n')[0] == c.Authenticate("LOGIN", None)
    assert events(conn, b'"' + base64.b64encode(b"ann") + b'"\r\n')[0] == c.AuthResponse(b"ann")
    assert events(conn, b"{4+}\r\ncHc=\r\n")[0] == c.AuthResponse(b"pw")
    assert events(conn, b'"*"\r\n')[0] == c.AuthCancel()
    assert conn.state is State.NOT_AUTH


def test_starttls_remembers_trailing_data() -> None:
    conn = ManageSieveConnection()
    assert events(conn, b"STARTTLS\r\nCAPABILITY\r\n")[0] == c.StartTls()
    assert conn.trailing_data == b"CAPABILITY\r\n"  # the adapter throws it away (RFC 5804 §2.2)
    conn = ManageSieveConnection(ManageSieveConfig(tls_active=True))
    conn.receive_data(b"STARTTLS\r\n")
    with pytest.raises(ProtocolError, match="TLS is already active"):
        conn.next_event()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"FROB\r\n", "unknown command FROB"),
        (b"GETSCRIPT\r\n", "wrong number of arguments"),
        (b'HAVESPACE "a" "b"\r\n', "a number expected"),
        (b'GETSCRIPT "a\\nb"\r\n', "may be escaped"),
        (b'GETSCRIPT "\xff"\r\n', "not valid UTF-8"),
        (b"GETSCRIPT {x}\r\n", "malformed literal"),
        (b'GETSCRIPT  "a"\r\n', "expected a string"),
        (b"123\r\n", "expected a command name"),
    ],
)
def test_bad_commands_get_no_and_the_connection_goes_on(line: bytes, words: str) -> None:
    conn = authed()
    conn.receive_data(line + b"LISTSCRIPTS\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.reply.startswith(b"NO ") and words in info.value.reply.decode()
    assert conn.next_event() == c.ListScripts()


def test_limits_end_the_connection() -> None:
    conn = ManageSieveConnection(ManageSieveConfig(max_literal=100, tls_active=True))
    conn.authenticated()
    conn.receive_data(b'PUTSCRIPT "a" {101+}\r\n')
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.fatal and info.value.reply.startswith(b"BYE (QUOTA/MAXSIZE)")
    conn = ManageSieveConnection(ManageSieveConfig(max_line=50))
    conn.receive_data(b'AUTHENTICATE "' + b"x" * 100)
    with pytest.raises(ProtocolError, match="too long") as info:
        conn.next_event()
    assert info.value.fatal
    conn = ManageSieveConnection(ManageSieveConfig(max_line=50, max_literal=100))
    conn.authenticated()
    conn.receive_data(b'PUTSCRIPT "a" {5+}\r\nkeep; "' + b"x" * 200)  # no end after the literal
    with pytest.raises(ProtocolError, match="too long"):
        conn.next_event()
    conn = ManageSieveConnection(ManageSieveConfig(max_errors=3))
    conn.receive_data(b"X\r\n" * 3)
    for _ in range(2):
        with pytest.raises(ProtocolError):
            conn.next_event()
    with pytest.raises(ProtocolError, match="too many bad commands") as info:
        conn.next_event()
    assert info.value.fatal
    assert conn.next_event() == c.Paused()


def test_responses() -> None:
    assert r.ok() == b"OK\r\n"
    assert r.no("no such script", r.NONEXISTENT) == b'NO (NONEXISTENT) "no such script"\r\n'
    assert r.string('a "b" \\') == b'"a \\"b\\" \\\\"'
    assert r.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert r.script_list([("a", False), ("b", True)]) == b'"a"\r\n"b" ACTIVE\r\nOK\r\n'
    assert r.script_body(b"keep;") == b"{5}\r\nkeep;\r\nOK\r\n"
    caps = r.capabilities(
        sieve_extensions=["fileinto"], sasl=["PLAIN"], starttls=True, max_redirects=4, owner=None
    )
    assert caps.endswith(
        b'"STARTTLS"\r\n"MAXREDIRECTS" "4"\r\n"UNAUTHENTICATE"\r\n"VERSION" "1.0"\r\nOK\r\n'
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_events_or_protocol_errors(data: bytes) -> None:
    conn = authed()
    conn.receive_data(data)
    for _ in range(200):
        try:
            event = conn.next_event()
        except ProtocolError:
            continue
        if isinstance(event, c.NeedData | c.Paused):
            break


def test_discarding_trailing_data_forgets_the_pipelined_command() -> None:
    conn = ManageSieveConnection()
    conn.receive_data(b"STARTTLS\r\nCAPABILITY\r\n")
    assert conn.next_event() == c.StartTls()
    assert conn.discard_trailing_data() == len(b"CAPABILITY\r\n")
    conn.tls_started()
    assert conn.trailing_data == b""
    assert isinstance(conn.next_event(), c.NeedData)  # RFC 5804 §2.2: never run under TLS
