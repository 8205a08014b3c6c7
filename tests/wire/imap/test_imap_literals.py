"""Framing: literals of each kind, limits, refusal before reading, recovery, IDLE and SASL."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import (
    AuthenticateResponse,
    Connection,
    ConnectionClosed,
    IdleDone,
    Limits,
    LiteralRequest,
    NeedData,
)
from courriel.wire.imap import commands as c


def test_synchronising_literal_waits_for_approval() -> None:
    conn = Connection()
    conn.receive_data(b"a1 LOGIN {3}\r\n")
    request = conn.next_event()
    assert request == LiteralRequest("a1", "LOGIN", 3)
    # asking again without answering repeats the request rather than reading on
    assert conn.next_event() == request
    assert conn.accept_literal() == b"+ Ready for literal data\r\n"
    assert conn.next_event() == NeedData()
    conn.receive_data(b"bob {2}\r\n")
    assert conn.next_event() == LiteralRequest("a1", "LOGIN", 2, received=3)
    conn.accept_literal()
    conn.receive_data(b"pw\r\n")
    assert conn.next_event() == c.Login("a1", "bob", "pw")


def test_refused_literal_is_never_read_and_next_command_parses() -> None:
    conn = Connection()
    conn.receive_data(b"a1 APPEND INBOX {50000000}\r\n")
    request = conn.next_event()
    assert isinstance(request, LiteralRequest)
    assert (request.command, request.size) == ("APPEND", 50_000_000)
    assert conn.refuse_literal() == b"a1 NO [TOOBIG] Literal too big\r\n"
    conn.receive_data(b"a2 NOOP\r\n")
    assert conn.next_event() == c.Noop("a2")


def test_refusal_with_another_code() -> None:
    conn = Connection()
    conn.receive_data(b"a1 APPEND INBOX {500}\r\n")
    conn.next_event()
    assert conn.refuse_literal("Over quota", "OVERQUOTA") == b"a1 NO [OVERQUOTA] Over quota\r\n"


def test_synchronising_literal_over_the_hard_limit_is_refused_by_the_core(run) -> None:
    conn = Connection(Limits(max_literal=100))
    events = run(conn, b"a1 APPEND INBOX {101}\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 NO [TOOBIG] Literal too big\r\n"
    assert events[1] == c.Noop("a2")


def test_uid_command_name_in_literal_request() -> None:
    conn = Connection()
    conn.receive_data(b"a1 UID COPY 1:3 {4}\r\n")
    assert conn.next_event() == LiteralRequest("a1", "UID COPY", 4)


def test_non_synchronising_literal_needs_no_approval(run) -> None:
    conn = Connection()
    events = run(conn, b"a1 LOGIN {3+}\r\nbob {2+}\r\npw\r\n")
    assert events == [c.Login("a1", "bob", "pw")]


def test_literal8_in_append() -> None:
    conn = Connection()
    conn.receive_data(b"a1 APPEND INBOX ~{4}\r\n")
    request = conn.next_event()
    assert isinstance(request, LiteralRequest) and request.binary
    conn.accept_literal()
    conn.receive_data(b"a\x00b\xff\r\n")
    cmd = conn.next_event()
    assert isinstance(cmd, c.Append) and cmd.messages[0].data == b"a\x00b\xff"


def test_literal8_is_refused_outside_append(run) -> None:
    events = run(Connection(), b"a1 LOGIN ~{3+}\r\nbob pw\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD literal8 is not allowed in user name\r\n"


def test_literal_read_in_bulk_across_many_chunks() -> None:
    body = bytes(range(256)).replace(b"\x00", b"") * 4000
    conn = Connection()
    conn.receive_data(b"a1 APPEND INBOX {%d+}\r\n" % len(body))
    for i in range(0, len(body), 65536):
        conn.receive_data(body[i : i + 65536])
        if i + 65536 < len(body):
            assert conn.next_event() == NeedData()
    conn.receive_data(b"\r\n")
    cmd = conn.next_event()
    assert isinstance(cmd, c.Append) and cmd.messages[0].data == body


def test_literal_plus_above_the_limit_is_bad_and_discarded_without_buffering() -> None:
    conn = Connection(Limits(max_literal=1000))
    conn.receive_data(b"a1 APPEND INBOX {5000+}\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.reply == b"a1 BAD [TOOBIG] Literal too big\r\n"
    assert not info.value.fatal
    for _ in range(5):  # 5000 bytes arrive in pieces; none of them stays buffered
        conn.receive_data(b"x" * 1000)
        assert conn.next_event() == NeedData()
        assert conn.trailing_data == b""
    conn.receive_data(b" (\\Seen) {3+}\r\nabc\r\na2 NOOP\r\n")  # rest of the refused command
    assert conn.next_event() == c.Noop("a2")


def test_literal_minus_caps_non_synchronising_literals_at_4096(run) -> None:
    conn = Connection(literal_plus=False)
    events = run(conn, b"a1 APPEND INBOX {4096+}\r\n" + b"y" * 4096 + b"\r\n")
    assert isinstance(events[0], c.Append)
    events = run(conn, b"a2 APPEND INBOX {4097+}\r\n" + b"y" * 4097 + b"\r\na3 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a2 BAD [TOOBIG] Literal too big\r\n"
    assert events[1:] == [c.Noop("a3")]
    # a synchronising literal of the same size is fine: the client waited for "+"
    events = run(conn, b"a4 APPEND INBOX {4097}\r\n" + b"y" * 4097 + b"\r\n")
    assert isinstance(events[0], c.Append) and len(events[0].messages[0].data) == 4097


def test_too_many_literals_in_one_command(run) -> None:
    conn = Connection(Limits(max_literals=2))
    events = run(conn, b"a1 APPEND INBOX {1+}\r\na {1+}\r\nb {1+}\r\nc\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Too many literals in one command\r\n"
    assert events[1:] == [c.Noop("a2")]


def test_bad_then_good_command(run) -> None:
    conn = Connection()
    events = run(conn, b"a1 FETCH 1 (FLAGS\r\na2 FETCH 1 (FLAGS)\r\n")
    assert isinstance(events[0], ProtocolError) and events[0].reply.startswith(b"a1 BAD ")
    assert isinstance(events[1], c.Fetch) and events[1].tag == "a2"


def test_bad_command_with_literal_then_good_command(run) -> None:
    events = run(Connection(), b"a1 LOGIN {3+}\r\nbob\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Expected password after the user name\r\n"
    assert events[1] == c.Noop("a2")


def test_line_too_long_with_a_tag_is_tagged_bad_and_skipped(run) -> None:
    conn = Connection(Limits(max_line=100))
    events = run(conn, b"a1 LOGIN " + b"x" * 200)
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Command line too long\r\n"
    assert not events[0].fatal
    # the rest of that line keeps arriving and is dropped; the next command is fine
    assert run(conn, b"y" * 5000 + b"\r\na2 NOOP\r\n") == [c.Noop("a2")]


def test_line_too_long_counts_text_around_literals(run) -> None:
    conn = Connection(Limits(max_line=40))
    line = b"a1 LOGIN {3+}\r\nbob " + b'"' + b"p" * 40 + b'"\r\na2 NOOP\r\n'
    events = run(conn, line)
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Command line too long\r\n"
    assert events[1] == c.Noop("a2")


def test_line_too_long_without_a_tag_is_bye(run) -> None:
    conn = Connection(Limits(max_line=100))
    events = run(conn, b"(" * 300)
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"* BYE Command line too long\r\n"
    assert events[0].fatal
    assert conn.next_event() == ConnectionClosed()


def test_line_too_long_of_letters_only_is_not_taken_for_a_tag(run) -> None:
    events = run(Connection(Limits(max_line=100)), b"a" * 300)
    assert isinstance(events[0], ProtocolError) and events[0].fatal
    assert events[0].reply == b"* BYE Command line too long\r\n"


def test_nesting_depth_limit(run) -> None:
    conn = Connection(Limits(max_depth=10))
    events = run(conn, b"a1 SEARCH " + b"NOT " * 20 + b"ALL\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Too deeply nested (limit 10)\r\n"
    assert events[1] == c.Noop("a2")


def test_deep_nesting_far_beyond_the_stack_is_a_bad_not_a_crash(run) -> None:
    events = run(Connection(), b"a1 SEARCH " + b"(" * 20000 + b"ALL" + b")" * 20000 + b"\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Too deeply nested (limit 100)\r\n"


def test_sequence_set_range_limit(run) -> None:
    conn = Connection(Limits(max_ranges=3))
    events = run(conn, b"a1 FETCH 1,2,3,4 UID\r\na2 FETCH 1,2,3 UID\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == (
        b"a1 BAD Too many ranges in sequence set (limit 3) in sequence set after FETCH\r\n"
    )
    assert isinstance(events[1], c.Fetch)


def test_repeated_errors_end_in_bye(run) -> None:
    conn = Connection(Limits(max_bad_commands=3))
    events = run(conn, b"a1 FOO\r\na2 NOOP\r\na3 BAR\r\na4 BAZ\r\na5 QUX\r\na6 NOOP\r\n")
    assert [type(e) for e in events] == [
        ProtocolError,
        c.Noop,
        ProtocolError,
        ProtocolError,
        ProtocolError,
    ]
    last = events[-1]
    assert isinstance(last, ProtocolError) and last.fatal
    assert last.reply == b"a5 BAD Unknown command QUX\r\n* BYE Too many invalid commands\r\n"


def test_pipelined_commands_and_bare_lf_and_blank_lines(run) -> None:
    events = run(Connection(), b"a1 NOOP\r\n\r\na2 CAPABILITY\na3 LOGOUT\r\n")
    assert events == [c.Noop("a1"), c.Capability("a2"), c.Logout("a3")]


def test_command_split_at_every_byte(run) -> None:
    data = b'a1 LOGIN {3+}\r\nbob "p\\"w"\r\na2 UID FETCH 1:* (FLAGS)\r\n'
    conn = Connection()
    events: list[object] = []
    for i in range(len(data)):
        events += run(conn, data[i : i + 1])
    assert events == [c.Login("a1", "bob", 'p"w'), run(Connection(), data[data.index(b"a2") :])[0]]


def test_end_of_input() -> None:
    conn = Connection()
    conn.receive_data(b"a1 NOOP\r\na2 NO")
    conn.receive_data(b"")
    assert conn.next_event() == c.Noop("a1")
    assert conn.next_event() == ConnectionClosed()


def test_idle_then_done(run) -> None:
    conn = Connection()
    events = run(conn, b"a1 IDLE\r\n")
    assert events == [c.Idle("a1")]
    assert conn.start_idle("a1") == b"+ idling\r\n"
    assert conn.idling
    assert run(conn, b"done\r\na2 NOOP\r\n") == [IdleDone("a1"), c.Noop("a2")]
    assert not conn.idling


def test_idle_accepts_only_done(run) -> None:
    conn = Connection()
    run(conn, b"a1 IDLE\r\n")
    conn.start_idle("a1")
    events = run(conn, b"a2 NOOP\r\na3 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Expected DONE\r\n"
    assert not conn.idling
    assert events[1] == c.Noop("a3")


def test_sasl_exchange(run) -> None:
    conn = Connection()
    assert run(conn, b"a1 AUTHENTICATE PLAIN\r\n") == [c.Authenticate("a1", "PLAIN", None)]
    assert conn.sasl_challenge("a1", b"") == b"+ \r\n"
    assert run(conn, b"AGJvYgBwdw==\r\n") == [AuthenticateResponse("a1", b"\x00bob\x00pw")]
    assert not conn.in_sasl
    assert conn.sasl_challenge("a1", b"more?") == b"+ bW9yZT8=\r\n"
    assert run(conn, b"*\r\n") == [AuthenticateResponse("a1", b"", cancelled=True)]


def test_sasl_response_must_be_base64(run) -> None:
    conn = Connection()
    run(conn, b"a1 AUTHENTICATE PLAIN\r\n")
    conn.sasl_challenge("a1", b"")
    events = run(conn, b"not base64!\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Invalid base64 in SASL response\r\n"
    assert events[1] == c.Noop("a2")


def test_trailing_data_after_starttls_is_visible(run) -> None:
    conn = Connection()
    assert run(conn, b"a1 STARTTLS\r\na2 LOGIN bob pw\r\n")[:0] == []
    conn2 = Connection()
    conn2.receive_data(b"a1 STARTTLS\r\na2 LOGIN bob pw\r\n")
    assert conn2.next_event() == c.StartTLS("a1")
    assert conn2.trailing_data == b"a2 LOGIN bob pw\r\n"
    assert conn2.take_trailing_data() == b"a2 LOGIN bob pw\r\n"
    assert conn2.next_event() == NeedData()


def test_session_api_misuse_is_a_runtime_error() -> None:
    conn = Connection()
    with pytest.raises(RuntimeError):
        conn.accept_literal()
    conn.receive_data(b"a1 LOGIN {3}\r\n")
    conn.next_event()
    with pytest.raises(RuntimeError):
        conn.start_idle("a1")


def test_overlong_line_during_idle_ends_idle_with_its_tag(run) -> None:
    conn = Connection(Limits(max_line=50))
    run(conn, b"i1 IDLE\r\n")
    conn.start_idle("i1")
    events = run(conn, b"x" * 80 + b"\r\na2 NOOP\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"i1 BAD Command line too long\r\n"
    assert not conn.idling
    assert events[1:] == [c.Noop("a2")]


def test_overlong_complete_line_ending_in_literal_plus_drops_the_literal(run) -> None:
    conn = Connection(Limits(max_line=50))
    data = b"a1 APPEND INBOX " + b"(" + b"\\Seen " * 10 + b") {5+}\r\nHELLO\r\na2 NOOP\r\n"
    events = run(conn, data)
    assert isinstance(events[0], ProtocolError)
    assert events[0].reply == b"a1 BAD Command line too long\r\n"
    assert events[1:] == [c.Noop("a2")]
