"""CHUNKING / BDAT (RFC 3030): exact octet counts, BINARYMIME, refusals that stay in step."""

from __future__ import annotations

from courriel.wire.smtp import BdatChunk, BdatLast, MessageData, Reply, State

ENVELOPE = b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"


def test_chunks_are_joined_at_last(smtp):
    d = smtp()
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT 5\r\nHelloBDAT 10 LAST\r\n world\r\n\r\n")
    assert out == b"250 2.0.0 5 octets received\r\n250 2.0.0 message accepted\r\n"
    assert d.of(BdatChunk) == [BdatChunk(5)]
    [last] = d.of(BdatLast)
    assert last.message == b"Hello world\r\n\r\n" and last.size == 10
    assert d.conn.state is State.READY


def test_chunk_content_is_never_parsed(smtp):
    # ".\r\n", commands and bare line ends inside a chunk are just octets (RFC 3030 §2)
    d = smtp()
    d.feed(ENVELOPE)
    chunk = b"QUIT\r\n.\r\nRSET\r\n"
    out = d.feed(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n")
    assert out == b"250 2.0.0 message accepted\r\n250 2.0.0 OK\r\n"
    assert d.of(BdatLast)[0].message == chunk


def test_chunk_split_across_reads(smtp):
    d = smtp()
    d.feed(ENVELOPE)
    assert d.feed(b"BDAT 10 LAST\r\n0123") == b""
    assert d.conn.buffered_bytes == 4
    assert d.feed(b"456789NOOP\r\n") == b"250 2.0.0 message accepted\r\n250 2.0.0 OK\r\n"
    assert d.of(BdatLast)[0].message == b"0123456789"


def test_zero_length_last_chunk(smtp):
    d = smtp()
    d.feed(ENVELOPE)
    d.feed(b"BDAT 3\r\nabcBDAT 0 LAST\r\n")
    assert d.of(BdatLast)[0].message == b"abc"


def test_binarymime_allows_any_octets_and_refuses_data(smtp):
    d = smtp()
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n")
    assert d.feed(b"DATA\r\n") == b"503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA\r\n"
    binary = bytes(range(256))
    d.feed(b"BDAT 256 LAST\r\n" + binary)
    assert d.of(BdatLast)[0].message == binary


def test_bare_lf_refused_without_binarymime(smtp):
    d = smtp()
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT 4\r\na\r\nbBDAT 2 LAST\r\n\nc")
    assert out.endswith(b"550 5.6.11 bare LF/CR is not allowed: end lines with CRLF\r\n")
    assert d.of(BdatLast) == []
    # a CRLF split between two chunks is not bare
    d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
    d.feed(b"BDAT 2\r\na\rBDAT 1 LAST\r\n\n")
    assert d.of(BdatLast)[0].message == b"a\r\n"


def test_refused_bdat_still_consumes_its_chunk(smtp):
    d = smtp()
    d.hello()
    out = d.feed(b"BDAT 12 LAST\r\nRSET\r\nQUIT\r\nNOOP\r\n")
    assert out == b"503 5.5.1 send MAIL FROM first\r\n250 2.0.0 OK\r\n"
    assert d.conn.state is State.READY


def test_bdat_needs_ehlo(smtp):
    d = smtp()
    d.feed(b"HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
    out = d.feed(b"BDAT 4 LAST\r\nNOOPNOOP\r\n")
    assert out == b"503 5.5.1 send EHLO first: this is an ESMTP extension\r\n250 2.0.0 OK\r\n"


def test_bad_bdat_syntax_closes(smtp):
    d = smtp()
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT many\r\nxxxx")
    assert out.startswith(b"501 5.5.4 Syntax: BDAT size [LAST]")
    assert d.errors[-1].fatal and d.conn.state is State.CLOSED


def test_data_after_bdat_is_refused(smtp):
    d = smtp()
    d.feed(ENVELOPE + b"BDAT 2\r\nab")
    assert d.feed(b"DATA\r\n") == b"503 5.5.1 DATA cannot follow BDAT in one transaction\r\n"
    assert d.feed(b"MAIL FROM:<x@example.net>\r\n").startswith(b"503 5.5.1 finish the message")
    assert d.feed(b"RSET\r\n") == b"250 2.0.0 reset\r\n"
    assert d.conn.state is State.READY


def test_too_big_is_refused_chunk_by_chunk_and_counts_once(smtp):
    d = smtp(max_message_bytes=10, max_errors=3)
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT 8\r\n12345678BDAT 8\r\n12345678BDAT 8\r\n12345678BDAT 8 LAST\r\n12345678")
    too_big = b"552 5.3.4 message too big: the limit is 10 octets\r\n"
    assert out == b"250 2.0.0 8 octets received\r\n" + too_big * 3
    assert d.conn.errors == 1 and d.conn.state is State.READY
    assert d.conn.buffered_bytes == 0
    assert d.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_huge_announced_chunk_is_discarded_as_it_arrives(smtp):
    d = smtp(max_message_bytes=1000)
    d.feed(ENVELOPE + b"BDAT 2000 LAST\r\n")  # a client that ignored SIZE: stay in step
    for _ in range(100):
        assert d.feed(b"x" * 20) in (
            b"",
            b"552 5.3.4 message too big: the limit is 1000 octets\r\n",
        )
        assert d.conn.buffered_bytes == 0
    assert d.errors and d.conn.state is State.READY


def test_refused_chunk_ends_the_transaction(smtp):
    d = smtp()
    d.overrides[BdatChunk] = Reply(452, "4.3.1", "out of space for now")
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT 2\r\nabBDAT 2 LAST\r\ncd")
    assert out == b"452 4.3.1 out of space for now\r\n503 5.5.1 send MAIL FROM first\r\n"
    assert d.of(BdatLast) == [] and d.of(MessageData) == []


def test_chunk_over_the_limit_is_refused_at_once(smtp):
    # A chunk of 2^64 octets can never be read to stay in step: 552 now, and the
    # connection closes, instead of waiting for data until the timeout.
    d = smtp(max_message_bytes=1000)
    d.feed(ENVELOPE)
    out = d.feed(b"BDAT 18446744073709551616 LAST\r\n")
    assert out == b"552 5.3.4 BDAT chunk far over the 1000 octet limit; closing\r\n"
    assert d.conn.state is State.CLOSED
    assert d.of(BdatLast) == []


def test_refused_bdat_over_the_limit_closes_too(smtp):
    d = smtp(max_message_bytes=1000)
    d.hello()  # no MAIL: the chunk would have been read only to be thrown away
    out = d.feed(b"BDAT 2001\r\n")
    assert out == b"552 5.3.4 BDAT chunk far over the 1000 octet limit; closing\r\n"
    assert d.conn.state is State.CLOSED
