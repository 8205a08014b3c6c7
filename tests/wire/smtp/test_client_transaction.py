"""The client core's transaction: what it writes for each server, and whose reply decides."""

from __future__ import annotations

import base64

import pytest

from courriel.wire.smtp.client import (
    ClientConnection,
    Phase,
    Transaction,
    UsageError,
    refusal,
    seven_bit,
)
from courriel.wire.smtp.client_commands import (
    ClientEnvelope,
    RecipientSpec,
    bdat,
    dot_stuffed,
    mail_from,
    rcpt_to,
    xtext,
)
from courriel.wire.smtp.client_replies import BadReply, Capabilities
from courriel.wire.smtp.replies import Reply

OK = Reply(250, "2.0.0", "ok")
GO = Reply(354, "", "go ahead")
NO_USER = Reply(550, "5.1.1", "no such user")
LATER = Reply(451, "4.3.0", "try later")
FULL = Capabilities(esmtp=True, pipelining=True, size=0, eight_bit_mime=True, dsn=True)
PLAIN = Capabilities(esmtp=True)


def envelope(
    n: int = 2, message: bytes = b"Subject: x\r\n\r\nhi\r\n", **kw: object
) -> ClientEnvelope:
    rcpts = tuple(RecipientSpec(f"u{i}@example.org") for i in range(n))
    return ClientEnvelope("a@example.net", rcpts, message, **kw)  # type: ignore[arg-type]


def run(
    caps: Capabilities, env: ClientEnvelope, replies: list[Reply]
) -> tuple[list[bytes], Transaction]:
    """Plays ``replies`` in order; returns the writes and the finished transaction."""
    tx = Transaction(caps, env)
    writes = [tx.start()]
    for reply in replies:
        assert not tx.done
        out = tx.receive(reply)
        if out:
            writes.append(out)
    assert tx.done
    return writes, tx


def test_pipelined_group_is_one_write_and_the_body_follows_354() -> None:
    writes, tx = run(FULL, envelope(), [OK, OK, OK, GO, OK])
    assert writes[0] == (
        b"MAIL FROM:<a@example.net> SIZE=18\r\nRCPT TO:<u0@example.org>\r\n"
        b"RCPT TO:<u1@example.org>\r\nDATA\r\n"
    )
    assert writes[1] == b"Subject: x\r\n\r\nhi\r\n.\r\n"
    assert tx.results == [OK, OK]


def test_without_pipelining_one_command_per_reply() -> None:
    writes, tx = run(PLAIN, envelope(), [OK, NO_USER, OK, GO, OK])
    assert writes == [
        b"MAIL FROM:<a@example.net>\r\n",
        b"RCPT TO:<u0@example.org>\r\n",
        b"RCPT TO:<u1@example.org>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nhi\r\n.\r\n",
    ]
    assert tx.results == [NO_USER, OK]


def test_per_recipient_4xx_and_5xx_are_kept_apart() -> None:
    final = Reply(250, "2.0.0", "queued as X")
    _, tx = run(FULL, envelope(3), [OK, LATER, NO_USER, OK, GO, final])
    assert tx.results == [LATER, NO_USER, final]


def test_every_rcpt_refused_pipelined_354_gets_an_empty_message() -> None:
    writes, tx = run(FULL, envelope(), [OK, NO_USER, NO_USER, GO, OK])
    assert writes[-1] == b".\r\n"  # RFC 2920 §3.1
    assert tx.results == [NO_USER, NO_USER]


def test_every_rcpt_refused_pipelined_data_refused() -> None:
    refused = Reply(554, "5.5.1", "no valid recipients")
    writes, tx = run(FULL, envelope(), [OK, NO_USER, NO_USER, refused])
    assert len(writes) == 1 and tx.results == [NO_USER, NO_USER]


def test_every_rcpt_refused_without_pipelining_resets() -> None:
    writes, tx = run(PLAIN, envelope(1), [OK, NO_USER, OK])
    assert writes[-1] == b"RSET\r\n" and tx.results == [NO_USER]


def test_mail_refused_decides_everyone_and_pipelined_replies_are_drained() -> None:
    bad_sender = Reply(553, "5.7.1", "sender refused")
    seq = Reply(503, "5.5.1", "need MAIL")
    writes, tx = run(FULL, envelope(), [bad_sender, seq, seq, seq])
    assert tx.results == [bad_sender, bad_sender] and len(writes) == 1


def test_data_refused_decides_the_accepted() -> None:
    _, tx = run(PLAIN, envelope(2), [OK, NO_USER, OK, LATER])
    assert tx.results == [NO_USER, LATER]


def test_final_reply_refusal_decides_the_accepted() -> None:
    spam = Reply(554, "5.7.1", "looks like spam")
    _, tx = run(FULL, envelope(2), [OK, OK, OK, GO, spam])
    assert tx.results == [spam, spam]


def test_chunking_sends_bdat_after_the_rcpt_replies() -> None:
    caps = Capabilities(esmtp=True, pipelining=True, chunking=True)
    env = envelope(2, b".leading dot\r\n")
    writes, tx = run(caps, env, [OK, OK, NO_USER, OK])
    assert b"DATA" not in writes[0]
    assert writes[1] == b"BDAT 14 LAST\r\n.leading dot\r\n"
    assert tx.results == [OK, NO_USER]


@pytest.mark.parametrize(
    ("message", "stuffed"),
    [
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),  # a lone "." line survives
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n.\r\n"),
        (b"no final line end", b"no final line end\r\n.\r\n"),
        (b"", b".\r\n"),
    ],
)
def test_dot_stuffing(message: bytes, stuffed: bytes) -> None:
    assert dot_stuffed(message) == stuffed


def test_bdat_is_exact() -> None:
    assert bdat(b"x\r\n.\r\n") == b"BDAT 6 LAST\r\nx\r\n.\r\n"


@pytest.mark.parametrize(
    ("caps", "kw", "line"),
    [
        (PLAIN, {"ret": "HDRS", "envid": "id"}, b"MAIL FROM:<a@example.net>\r\n"),
        (
            FULL,
            {"ret": "HDRS", "envid": "a+b=c"},
            b"MAIL FROM:<a@example.net> SIZE=20 RET=HDRS ENVID=a+2Bb+3Dc\r\n",
        ),
        (FULL, {"eight_bit": True}, b"MAIL FROM:<a@example.net> SIZE=20 BODY=8BITMIME\r\n"),
        (
            Capabilities(esmtp=True, smtputf8=True, requiretls=True),
            {"smtputf8": True, "requiretls": True},
            b"MAIL FROM:<a@example.net> SMTPUTF8 REQUIRETLS\r\n",
        ),
    ],
)
def test_mail_parameters_only_when_offered(
    caps: Capabilities, kw: dict[str, object], line: bytes
) -> None:
    assert mail_from(envelope(**kw), caps, 20) == line


@pytest.mark.parametrize(
    ("spec", "caps", "line"),
    [
        (
            RecipientSpec("b@x.org", ("SUCCESS", "FAILURE"), "rfc822;b@x.org"),
            PLAIN,
            b"RCPT TO:<b@x.org>\r\n",
        ),
        (
            RecipientSpec("b@x.org", ("SUCCESS", "FAILURE"), "rfc822;b+1@x.org"),
            FULL,
            b"RCPT TO:<b@x.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2B1@x.org\r\n",
        ),
        (RecipientSpec("b@x.org", ()), FULL, b"RCPT TO:<b@x.org> NOTIFY=NEVER\r\n"),
    ],
)
def test_rcpt_parameters(spec: RecipientSpec, caps: Capabilities, line: bytes) -> None:
    assert rcpt_to(spec, caps) == line


def test_xtext_escapes_plus_equals_and_non_ascii() -> None:
    assert xtext("a b+c=é") == "a+20b+2Bc+3D+C3+A9"


@pytest.mark.parametrize("address", ["a\r\nRCPT TO:<x@y>", "a>b@x", "a\x00@x"])
def test_addresses_that_could_forge_a_command_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        rcpt_to(RecipientSpec(address), PLAIN)


def test_refusals_before_mail() -> None:
    assert refusal(PLAIN, envelope(smtputf8=True), "mx").enhanced == "5.6.7"  # type: ignore[union-attr]
    assert "REQUIRETLS" in refusal(PLAIN, envelope(requiretls=True), "mx").text  # type: ignore[union-attr]
    small = Capabilities(esmtp=True, size=10)
    assert "at most 10" in refusal(small, envelope(), "mx").text  # type: ignore[union-attr]
    assert refusal(FULL, envelope(smtputf8=False), "mx") is None


def test_seven_bit_asks_for_conversion_only_when_needed() -> None:
    calls: list[bytes] = []

    def convert(m: bytes) -> bytes | None:
        calls.append(m)
        return None

    eight = envelope(message="é".encode() + b"\r\n", eight_bit=True)
    assert seven_bit(eight, FULL, convert) == eight.message
    assert seven_bit(envelope(), PLAIN, convert) == envelope().message
    assert seven_bit(eight, PLAIN, convert) is None and calls == [eight.message]


def test_connection_phases_with_starttls_and_auth() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 mx ready\r\n")
    assert conn.receive(conn.next_reply()) == b"" and conn.phase is Phase.FRESH  # type: ignore[arg-type]
    assert conn.ehlo("me.example") == b"EHLO me.example\r\n"
    conn.receive_data(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
    conn.receive(conn.next_reply())  # type: ignore[arg-type]
    assert conn.caps.starttls and conn.phase is Phase.READY
    conn.starttls()
    conn.receive(Reply(220, "2.0.0", "go"))
    assert conn.phase is Phase.TLS
    conn.tls_started()
    assert conn.phase is Phase.FRESH and conn.tls and not conn.caps.starttls
    conn.ehlo("me.example")
    conn.receive(Reply(250, "", "mx", ("AUTH PLAIN",)))
    line = conn.auth_plain("user", "pw")
    assert base64.b64decode(line.split()[2]) == b"\0user\0pw"
    conn.receive(Reply(235, "2.7.0", "ok"))
    conn.begin(envelope(1))
    for reply in (OK, OK, GO, OK):
        conn.receive(reply)
    assert conn.phase is Phase.READY
    assert conn.rset() == b"RSET\r\n"


def test_data_before_tls_handshake_is_refused() -> None:
    conn = ClientConnection()
    conn.receive(Reply(220, "", "hi"))
    conn.ehlo("me")
    conn.receive(Reply(250, "", "mx", ("STARTTLS",)))
    conn.starttls()
    conn.receive_data(b"220 go\r\n250 injected\r\n")
    conn.receive(conn.next_reply())  # type: ignore[arg-type]
    with pytest.raises(BadReply, match="before TLS started"):
        conn.tls_started()


def test_421_closes_and_unasked_replies_are_errors() -> None:
    conn = ClientConnection()
    conn.receive(Reply(220, "", "hi"))
    conn.receive_data(b"250 surprise\r\n")
    with pytest.raises(BadReply, match="nobody asked"):
        conn.next_reply()
    conn = ClientConnection()
    conn.receive(Reply(220, "", "hi"))
    conn.ehlo("me")
    conn.receive(Reply(421, "4.3.2", "shutting down"))
    assert conn.phase is Phase.CLOSED


def test_out_of_turn_calls_are_usage_errors() -> None:
    conn = ClientConnection()
    with pytest.raises(UsageError):
        conn.begin(envelope())
    with pytest.raises(UsageError):
        conn.tls_started()
