"""Reading server replies: multi-line, enhanced codes, and the bounds a hostile server meets."""

from __future__ import annotations

import pytest

from courriel.wire.smtp.client_replies import BadReply, Capabilities, ReplyLimits, ReplyReader
from courriel.wire.smtp.replies import Reply


def read_all(data: bytes, limits: ReplyLimits | None = None) -> list[Reply]:
    reader = ReplyReader(limits)
    reader.feed(data)
    out = []
    while (reply := reader.next_reply()) is not None:
        out.append(reply)
    return out


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"220 mx.example.org ESMTP\r\n", Reply(220, "", "mx.example.org ESMTP")),
        (b"250 2.1.5 ok\r\n", Reply(250, "2.1.5", "ok")),
        (b"550 5.1.1 no such user\r\n", Reply(550, "5.1.1", "no such user")),
        # an enhanced code whose class disagrees with the reply's is text (RFC 3463 §2)
        (b"250 5.1.1 odd\r\n", Reply(250, "", "5.1.1 odd")),
        (b"354\r\n", Reply(354, "", "")),
        (b"250 ok\n", Reply(250, "", "ok")),  # bare LF taken as a line end
        (
            b"452-4.5.3 too many\r\n452 4.5.3 try later\r\n",
            Reply(452, "4.5.3", "too many", ("try later",)),
        ),
        (b"250 caf\xc3\xa9 \x00\x1b\r\n", Reply(250, "", "café ??")),  # printable, no NUL
        (b"250 \xff\r\n", Reply(250, "", "\ufffd")),
    ],
)
def test_reply_table(raw: bytes, expected: Reply) -> None:
    assert read_all(raw) == [expected]


def test_replies_split_anywhere_come_out_whole() -> None:
    data = b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n221 2.0.0 bye\r\n"
    for cut in range(1, len(data)):
        reader = ReplyReader()
        got = []
        for piece in (data[:cut], data[cut:]):
            reader.feed(piece)
            while (reply := reader.next_reply()) is not None:
                got.append(reply)
        assert [r.code for r in got] == [250, 221]
        assert got[0].more == ("PIPELINING", "SIZE 1000")


@pytest.mark.parametrize(
    "raw",
    [
        b"hello\r\n",
        b"2500 ok\r\n",
        b"25 ok\r\n",
        b"150 ok\r\n",
        b"650 ok\r\n",
        b"250_ok\r\n",
        b"250-first\r\n550 second\r\n",  # RFC 5321 §4.2.1: one code per reply
    ],
)
def test_garbage_is_bad_reply(raw: bytes) -> None:
    with pytest.raises(BadReply):
        read_all(raw)


def test_long_line_fails_without_waiting_for_its_end() -> None:
    reader = ReplyReader(ReplyLimits(max_line=2048))
    reader.feed(b"250 " + b"x" * 4096)  # no LF yet: a 10 MB line is refused at 2 KB
    with pytest.raises(BadReply, match="longer than 2048"):
        reader.next_reply()


def test_never_ending_reply_is_bounded_by_lines_and_octets() -> None:
    reader = ReplyReader(ReplyLimits(max_lines=10))
    reader.feed(b"250-more\r\n" * 11)
    with pytest.raises(BadReply, match="10 lines"):
        reader.next_reply()
    reader = ReplyReader(ReplyLimits(max_bytes=1000, max_lines=1000))
    reader.feed(b"250-" + b"y" * 96 + b"\r\n")
    assert reader.next_reply() is None
    reader.feed((b"250-" + b"y" * 96 + b"\r\n") * 10)
    with pytest.raises(BadReply, match="1000 octets"):
        reader.next_reply()


def test_capabilities_from_ehlo() -> None:
    (reply,) = read_all(
        b"250-mx.example.org hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-8BITMIME\r\n250-smtputf8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-DSN\r\n"
        b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-REQUIRETLS\r\n"
        b"250-AUTH=LOGIN\r\n250 AUTH plain login\r\n"
    )
    caps = Capabilities.from_ehlo(reply)
    assert caps == Capabilities(
        esmtp=True,
        pipelining=True,
        size=10240000,
        eight_bit_mime=True,
        smtputf8=True,
        chunking=True,
        binary_mime=True,
        dsn=True,
        starttls=True,
        enhanced_status_codes=True,
        requiretls=True,
        auth=frozenset({"PLAIN", "LOGIN"}),
    )


@pytest.mark.parametrize(
    ("line", "size"), [("SIZE", 0), ("SIZE 0", 0), ("SIZE 52428800", 52428800), ("SIZE x", 0)]
)
def test_size_keyword(line: str, size: int) -> None:
    assert Capabilities.from_ehlo(Reply(250, "", "mx", (line,))).size == size


def test_nothing_offered() -> None:
    caps = Capabilities.from_ehlo(Reply(250, "", "mx.example.org"))
    assert caps.esmtp and not caps.pipelining and caps.size is None and not caps.auth
