"""DATA: bulk reading, dot-unstuffing, smuggling, bare line ends, size and line limits."""

from __future__ import annotations

import pytest

from courriel.wire.smtp import (
    BdatLast,
    Data,
    Ehlo,
    MessageData,
    NeedData,
    SmtpConfig,
    SmtpConnection,
    State,
)
from courriel.wire.smtp import replies as r

ENVELOPE = b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"


def in_data(smtp, **config):
    d = smtp(**config)
    out = d.feed(ENVELOPE)
    assert out.endswith(b"354 send the message, end with <CR><LF>.<CR><LF>\r\n")
    return d


def test_dot_unstuffing_removes_one_leading_dot(smtp):
    d = in_data(smtp)
    out = d.feed(b"..leading\r\n...two\r\n.x\r\nmid.dle\r\n..\r\n.\r\n")
    assert out == b"250 2.0.0 message accepted\r\n"
    [msg] = d.of(MessageData)
    # RFC 5321 §4.5.2: the first character of a line starting with "." is deleted
    assert msg.message == b".leading\r\n..two\r\nx\r\nmid.dle\r\n.\r\n"


def test_empty_message(smtp):
    d = in_data(smtp)
    assert d.feed(b".\r\n") == b"250 2.0.0 message accepted\r\n"
    assert d.of(MessageData)[0].message == b""


def test_content_arriving_with_data_is_not_read_before_354(smtp):
    # RFC 2920 §3.1: a client that pipelines past DATA gets its content parsed as commands
    # when DATA is refused, and as message when it is accepted.
    d = smtp()
    d.overrides[Data] = r.NO_VALID_RECIPIENTS
    out = d.feed(ENVELOPE + b"NOOP\r\n.\r\n")
    assert b"554 5.5.1 no valid recipients" in out
    assert out.endswith(b"250 2.0.0 OK\r\n500 5.5.2 command not recognized\r\n")
    assert d.of(MessageData) == []

    d2 = smtp()
    out = d2.feed(ENVELOPE + b"NOOP\r\n.\r\nNOOP\r\n")
    assert d2.of(MessageData)[0].message == b"NOOP\r\n"
    assert out.endswith(b"250 2.0.0 message accepted\r\n250 2.0.0 OK\r\n")


def test_message_split_byte_by_byte(smtp):
    d = in_data(smtp)
    body = b"Subject: t\r\n\r\n.hidden\r\nline\r\n.\r\nNOOP\r\n"
    out = b"".join(d.feed(body[i : i + 1]) for i in range(len(body)))
    assert out == b"250 2.0.0 message accepted\r\n250 2.0.0 OK\r\n"
    assert d.of(MessageData)[0].message == b"Subject: t\r\n\r\nhidden\r\nline\r\n"


@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r\r\n.\r\r\n"],
    ids=["lf-dot-lf", "cr-dot-cr", "lf-dot-crlf", "crlf-dot-lf", "crlf-dot-cr", "crcrlf"],
)
def test_smuggling_sequences_do_not_end_data(smtp, fake_end):
    # CVE-2023-51766 class: only <CRLF>.<CRLF> ends DATA, so the smuggled MAIL/RCPT/DATA
    # below stays inside the first message, which is refused for its bare line ends.
    d = in_data(smtp)
    smuggled = b"MAIL FROM:<boss@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    out = d.feed(b"Subject: one\r\n\r\nbody" + fake_end + smuggled + b"forged\r\n")
    assert out == b""  # still inside the first message
    assert d.conn.state is State.DATA
    out = d.feed(b".\r\n")
    assert out == b"550 5.6.11 bare LF/CR is not allowed: end lines with CRLF\r\n"
    assert d.of(MessageData) == [] and len(d.events) == 4  # EHLO MAIL RCPT DATA only
    assert d.conn.state is State.READY  # the connection goes on, in step with the client
    assert d.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


@pytest.mark.parametrize(
    "body", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\nb\r\n", b"\r\r\n", b"\nfirst\r\n"]
)
def test_bare_cr_or_lf_is_refused_after_the_terminator(smtp, body):
    d = in_data(smtp)
    assert (
        d.feed(body + b".\r\n") == b"550 5.6.11 bare LF/CR is not allowed: end lines with CRLF\r\n"
    )
    assert d.of(MessageData) == []
    assert d.feed(b"MAIL FROM:<a@example.net>\r\n") == b"250 2.1.0 sender OK\r\n"


def test_bare_lf_in_a_later_segment_is_found(smtp):
    d = in_data(smtp)
    assert d.feed(b"line one\r\nline two\r\n" * 100) == b""
    assert d.feed(b"bare\nhere\r\n") == b""
    assert d.feed(b"tail\r\n.\r\n").startswith(b"550 5.6.11 ")


def test_message_over_the_limit_is_refused_after_the_terminator(smtp):
    d = in_data(smtp, max_message_bytes=1000)
    line = b"x" * 98 + b"\r\n"
    for _ in range(30):
        assert d.feed(line) == b""
    assert d.conn.buffered_bytes < 1000  # content past the limit was dropped, not kept
    assert d.feed(b".\r\n") == b"552 5.3.4 message too big: the limit is 1000 octets\r\n"
    assert d.of(MessageData) == []
    assert d.conn.state is State.READY  # RFC 5321 §4.1.1.4, and the session goes on
    assert d.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_message_exactly_at_the_limit_is_accepted(smtp):
    d = in_data(smtp, max_message_bytes=1000)
    body = (b"x" * 98 + b"\r\n") * 10  # 1000 octets
    assert (
        d.feed(b"." + body + b".\r\n") == b"250 2.0.0 message accepted\r\n"
    )  # stuffing not counted
    assert d.of(MessageData)[0].message == body
    d2 = in_data(smtp, max_message_bytes=999)
    assert d2.feed(body + b".\r\n").startswith(b"552 5.3.4 ")


@pytest.mark.parametrize("cut", range(1, 5))
def test_message_at_the_limit_with_the_terminator_split(smtp, cut):
    end = b"\r\n.\r\n"
    d = in_data(smtp, max_message_bytes=10)
    assert d.feed(b"12345678" + end[:cut]) == b""
    assert d.feed(end[cut:]) == b"250 2.0.0 message accepted\r\n"
    assert d.of(MessageData)[0].message == b"12345678\r\n"


def test_one_endless_line_stays_within_the_limit(smtp):
    d = in_data(smtp, max_message_bytes=10_000)
    for _ in range(100):
        d.feed(b"y" * 1000)
        assert d.conn.buffered_bytes <= 10_000
    assert d.feed(b"\r\n.\r\n").startswith(b"552 5.3.4 ")


def test_terminator_split_across_reads_after_the_limit(smtp):
    d = in_data(smtp, max_message_bytes=100)
    d.feed(b"z" * 500 + b"\r\n.")
    assert d.conn.state is State.DATA
    assert d.feed(b"\r") == b""
    assert (
        d.feed(b"\nNOOP\r\n")
        == b"552 5.3.4 message too big: the limit is 100 octets\r\n250 2.0.0 OK\r\n"
    )


def test_long_lines_are_accepted_and_reported(smtp):
    d = in_data(smtp)
    d.feed(b"short\r\n" + b"L" * 998 + b"\r\n.\r\n")
    assert d.of(MessageData)[0].long_lines is False
    d2 = in_data(smtp)
    d2.feed(b"short\r\n" + b"L" * 999 + b"\r\n.\r\n")
    [msg] = d2.of(MessageData)
    assert msg.long_lines is True and len(msg.message) == 7 + 999 + 2


def test_long_lines_refused_when_strict(smtp):
    d = in_data(smtp, strict_lines=True)
    out = d.feed(b"." + b"L" * 998 + b"\r\n.\r\n")  # 998 after unstuffing: fine
    assert out == b"250 2.0.0 message accepted\r\n"
    d.feed(ENVELOPE[16:])
    out = d.feed(b"L" * 999 + b"\r\n.\r\n")
    assert out == b"550 5.6.0 message has a line longer than 998 characters\r\n"


def test_disconnect_mid_data_delivers_nothing(smtp):
    d = in_data(smtp)
    d.feed(b"Subject: half\r\n\r\nsome text\r\n")
    d.conn.connection_lost()
    assert d.conn.state is State.CLOSED
    assert d.drain() == b""
    assert d.of(MessageData) == []
    assert d.conn.buffered_bytes == 0


def test_two_messages_in_one_connection(smtp):
    d = in_data(smtp)
    d.feed(b"first\r\n.\r\n")
    d.feed(ENVELOPE[16:] + b"second\r\n.\r\n")
    assert [m.message for m in d.of(MessageData)] == [b"first\r\n", b"second\r\n"]


def test_large_message_in_few_reads(smtp):
    d = in_data(smtp)
    body = b"".join(
        b"line %06d of the message body, some text to fill\r\n" % i for i in range(2000)
    )
    stuffed = body.replace(b"\r\nline 0001", b"\r\n.line 0001")
    assert stuffed != body
    for i in range(0, len(stuffed), 65536):
        d.feed(stuffed[i : i + 65536])
    assert d.feed(b".\r\n") == b"250 2.0.0 message accepted\r\n"
    assert d.of(MessageData)[0].message == body.replace(b"\r\n.line", b"\r\nline")


def test_need_data_while_waiting_for_the_terminator():
    conn = SmtpConnection(SmtpConfig(hostname="mx.example.org"))
    conn.greeting()
    conn.receive_data(ENVELOPE)
    assert isinstance(conn.next_event(), Ehlo)
    conn.send(conn.ehlo_reply())
    for _ in range(2):  # MAIL, RCPT
        conn.next_event()
        conn.send(r.OK)
    assert conn.next_event() == Data()
    conn.send(r.START_DATA)
    conn.receive_data(b"partial")
    assert conn.next_event() == NeedData()
    assert conn.buffered_bytes == 7
    conn.receive_data(b"\r\n.\r\n")
    assert conn.next_event() == MessageData(b"partial\r\n", long_lines=False)


def test_mid_command_while_content_or_a_partial_line_is_awaited(smtp):
    """The driver has these acknowledged at once (net/driver.py)."""
    d = smtp()
    assert not d.conn.mid_command
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n")
    assert not d.conn.mid_command
    d.feed(b"DATA\r\n")
    assert not d.conn.mid_command  # after 354: nothing has arrived yet
    d.feed(b"Subject: x\r\n\r\nbody\r\n")
    assert d.conn.mid_command  # part of the message, the rest on its way
    d.feed(b".\r\n")
    assert not d.conn.mid_command
    d.feed(b"NO")
    assert d.conn.mid_command
    d.feed(b"OP\r\n")
    assert not d.conn.mid_command
    d.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\n")
    assert d.conn.mid_command  # the BDAT line is here, its chunk is not
    d.feed(b"hello")
    assert d.of(BdatLast) and not d.conn.mid_command
