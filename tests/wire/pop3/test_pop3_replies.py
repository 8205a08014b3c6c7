"""POP3 reply bytes: status lines, listings, and byte-stuffed messages for RETR and TOP."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.wire.pop3 import replies
from courriel.wire.pop3.replies import RespCode


def client_reads(response: bytes) -> tuple[bytes, bytes]:
    """(status line, payload) the way a POP3 client reads a multi-line response (RFC 1939 §3).

    Written line by line on purpose: it is the reference the bulk code is checked against.
    """
    status, sep, rest = response.partition(b"\r\n")
    assert sep, "no status line"
    lines = []
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        assert sep, "response ends before its terminating line"
        if line == b".":
            break
        lines.append(line[1:] if line.startswith(b".") else line)
    assert rest == b"", "bytes after the terminating line"
    return status, b"".join(line + b"\r\n" for line in lines)


# --- status lines -----------------------------------------------------------------------------


def test_ok_and_err_lines() -> None:
    assert replies.ok() == b"+OK\r\n"
    assert replies.ok("hello") == b"+OK hello\r\n"
    assert replies.err("no such message") == b"-ERR no such message\r\n"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (RespCode.IN_USE, b"IN-USE"),
        (RespCode.LOGIN_DELAY, b"LOGIN-DELAY"),
        (RespCode.SYS_TEMP, b"SYS/TEMP"),
        (RespCode.SYS_PERM, b"SYS/PERM"),
        (RespCode.AUTH, b"AUTH"),
    ],
)
def test_err_with_response_code(code: RespCode, text: bytes) -> None:
    assert replies.err("try later", code) == b"-ERR [" + text + b"] try later\r\n"


@pytest.mark.parametrize("text", ["two\r\nlines", "bare\nlf", "bare\rcr"])
def test_reply_text_must_be_one_line(text: str) -> None:
    with pytest.raises(ValueError):
        replies.ok(text)
    with pytest.raises(ValueError):
        replies.err(text)


def test_err_text_cannot_fake_a_response_code() -> None:
    with pytest.raises(ValueError):
        replies.err("[IN-USE] not really")
    assert replies.err("[x]", RespCode.SYS_TEMP) == b"-ERR [SYS/TEMP] [x]\r\n"


def test_shared_sentences() -> None:
    assert replies.greeting() == b"+OK courriel POP3 server ready\r\n"
    assert replies.signing_off() == b"+OK courriel POP3 server signing off\r\n"
    assert replies.no_such_message() == b"-ERR no such message\r\n"
    assert replies.already_deleted(2) == b"-ERR message 2 already deleted\r\n"
    assert replies.deleted(1) == b"+OK message 1 deleted\r\n"
    assert replies.maildrop_status(2, 320) == b"+OK maildrop has 2 messages (320 octets)\r\n"
    assert replies.maildrop_locked() == b"-ERR [IN-USE] maildrop already locked\r\n"
    assert replies.auth_failed() == b"-ERR [AUTH] authentication failed\r\n"
    assert replies.update_failed().startswith(b"-ERR [SYS/TEMP] ")
    assert replies.login_delay().startswith(b"-ERR [LOGIN-DELAY] ")
    assert replies.temporary_failure().startswith(b"-ERR [SYS/TEMP] ")
    assert replies.tls_starting() == b"+OK begin TLS negotiation\r\n"


def test_multiline_stuffs_lines_starting_with_a_dot() -> None:
    got = replies.multiline(replies.ok("list"), ["a", ".b", "..", ""])
    assert got == b"+OK list\r\na\r\n..b\r\n...\r\n\r\n.\r\n"


# --- listings ---------------------------------------------------------------------------------


def test_stat_and_single_lines() -> None:
    assert replies.stat_reply(2, 320) == b"+OK 2 320\r\n"  # RFC 1939 §5
    assert replies.scan_line(2, 200) == b"+OK 2 200\r\n"
    assert replies.uidl_line(2, "QhdPYR:00WBw1Ph7x7") == b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n"


def test_scan_listing_skips_nothing_it_is_given() -> None:
    # message 2 is marked deleted: the session leaves it out, numbers do not shift
    got = replies.scan_listing([(1, 120), (3, 200)])
    assert got == b"+OK 2 messages (320 octets)\r\n1 120\r\n3 200\r\n.\r\n"


def test_empty_listings() -> None:
    assert replies.scan_listing([]) == b"+OK 0 messages (0 octets)\r\n.\r\n"
    assert replies.uidl_listing([]) == b"+OK unique-id listing follows\r\n.\r\n"


def test_uidl_listing() -> None:
    got = replies.uidl_listing([(1, "whqtswO00WBw418f9t5JxYwZ"), (2, "QhdPYR:00WBw1Ph7x7")])
    assert got == (
        b"+OK unique-id listing follows\r\n"
        b"1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"
    )


@pytest.mark.parametrize("uid", ["", "a b", "x" * 71, "caf\u00e9", "tab\there", "del\x7f"])
def test_invalid_unique_ids_are_refused(uid: str) -> None:
    # RFC 1939 §7: 1 to 70 characters from 0x21 to 0x7E
    with pytest.raises(ValueError):
        replies.uidl_line(1, uid)
    with pytest.raises(ValueError):
        replies.uidl_listing([(1, uid)])


def test_unique_id_of_70_characters_is_fine() -> None:
    assert replies.uidl_line(1, "~" * 70) == b"+OK 1 " + b"~" * 70 + b"\r\n"


# --- RETR -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        (b"Subject: a\r\n\r\nbody\r\n", b"Subject: a\r\n\r\nbody\r\n"),
        # a message starting with "." gets the first line stuffed too
        (b".hidden\r\n", b"..hidden\r\n"),
        # lines of only "." and of ".." are doubled
        (b"a\r\n.\r\n..\r\nb\r\n", b"a\r\n..\r\n...\r\nb\r\n"),
        (b".\r\n", b"..\r\n"),
        # no final line end: one is added so the terminator starts a line
        (b"a\r\nlast", b"a\r\nlast\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n"),
        # a dot not at a line start is left alone
        (b"a.b\r\n x\r\n", b"a.b\r\n x\r\n"),
    ],
)
def test_message_response_stuffing(raw: bytes, wire: bytes) -> None:
    status = b"+OK %d octets\r\n" % len(raw)  # RFC 1939 §11: the size before stuffing
    assert replies.message_response(raw) == status + wire + b".\r\n"


def test_empty_message() -> None:
    assert replies.message_response(b"") == b"+OK 0 octets\r\n.\r\n"


crlf_messages = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=30,
).map(lambda lines: b"".join(line + b"\r\n" for line in lines))


@given(crlf_messages, st.booleans())
def test_client_reads_back_exactly_what_was_stored(raw: bytes, cut_last_crlf: bool) -> None:
    if cut_last_crlf and raw.endswith(b"\r\n"):
        raw = raw[:-2]
    status, payload = client_reads(replies.message_response(raw))
    assert status == b"+OK %d octets" % len(raw)
    assert payload == (raw if raw.endswith(b"\r\n") or not raw else raw + b"\r\n")


# --- TOP --------------------------------------------------------------------------------------

MESSAGE = b"From: a@example.org\r\nSubject: x\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"


@pytest.mark.parametrize(
    ("raw", "end"),
    [
        (MESSAGE, MESSAGE.index(b"line 1")),
        (b"Subject: x\r\n", 12),  # no separator: all header, no body
        (b"Subject: x\r\n\r\n", 14),
        (b"\r\nbody\r\n", 2),  # an empty header
        (b"", 0),
    ],
)
def test_header_end(raw: bytes, end: int) -> None:
    assert replies.header_end(raw) == end


def test_top_zero_sends_header_and_blank_line() -> None:
    got = replies.top_response(MESSAGE, replies.header_end(MESSAGE), 0)
    assert client_reads(got) == (
        b"+OK top of message follows",
        b"From: a@example.org\r\nSubject: x\r\n\r\n",
    )


@pytest.mark.parametrize(
    ("n", "body"),
    [
        (1, b"line 1\r\n"),
        (2, b"line 1\r\n.line 2\r\n"),
        (3, b"line 1\r\n.line 2\r\nline 3\r\n"),
        (4, b"line 1\r\n.line 2\r\nline 3\r\n"),
        (10**30, b"line 1\r\n.line 2\r\nline 3\r\n"),
    ],
)
def test_top_n_lines(n: int, body: bytes) -> None:
    got = replies.top_response(MESSAGE, replies.header_end(MESSAGE), n)
    header = b"From: a@example.org\r\nSubject: x\r\n\r\n"
    assert client_reads(got) == (b"+OK top of message follows", header + body)
    assert b"\r\n..line 2\r\n" in got or n < 2  # the body is stuffed like RETR


def test_top_of_a_body_without_final_line_end() -> None:
    raw = b"S: x\r\n\r\na\r\nb"
    assert client_reads(replies.top_response(raw, 8, 1))[1] == b"S: x\r\n\r\na\r\n"
    assert client_reads(replies.top_response(raw, 8, 2))[1] == b"S: x\r\n\r\na\r\nb\r\n"


def test_top_of_a_message_without_body() -> None:
    raw = b"Subject: x\r\n"
    got = replies.top_response(raw, replies.header_end(raw), 5)
    assert client_reads(got)[1] == raw


header_fields = st.lists(
    st.binary(min_size=1, max_size=40)
    .map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    .filter(bool),
    max_size=8,
).map(lambda lines: b"".join(line + b"\r\n" for line in lines) + b"\r\n")


@given(header_fields, crlf_messages, st.integers(min_value=0, max_value=40))
def test_top_matches_a_line_by_line_reference(header: bytes, body: bytes, n: int) -> None:
    raw = header + body
    assert replies.header_end(raw) == len(header)
    lines = body.split(b"\r\n")[:-1]
    expected = header + b"".join(line + b"\r\n" for line in lines[:n])
    assert client_reads(replies.top_response(raw, len(header), n))[1] == expected


def test_top_rejects_impossible_arguments() -> None:
    with pytest.raises(ValueError):
        replies.top_response(MESSAGE, len(MESSAGE) + 1, 1)
    with pytest.raises(ValueError):
        replies.top_response(MESSAGE, -1, 1)
    with pytest.raises(ValueError):
        replies.top_response(MESSAGE, 0, -1)


LONG_BODY_LINES = [b"." * (i % 3) + b"line %d" % i for i in range(200)]


@pytest.mark.parametrize("n", [63, 64, 65, 100, 199, 200, 201, 10**30])
def test_top_of_a_long_body_around_the_search_strategies(n: int) -> None:
    header = b"Subject: long\r\n\r\n"
    raw = header + b"".join(line + b"\r\n" for line in LONG_BODY_LINES)
    expected = header + b"".join(line + b"\r\n" for line in LONG_BODY_LINES[:n])
    assert client_reads(replies.top_response(raw, len(header), n))[1] == expected
