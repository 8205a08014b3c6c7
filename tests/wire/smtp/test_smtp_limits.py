"""Limits: recipients per message, command line length, the error budget."""

from __future__ import annotations

from courriel.wire.smtp import RcptTo, Reply, State


def test_too_many_recipients(smtp):
    d = smtp(max_recipients=3)
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    out = d.feed(b"".join(b"RCPT TO:<u%d@example.org>\r\n" % i for i in range(5)))
    # RFC 5321 §4.5.3.1.10: 452 for the ones over the limit; they can be sent again later
    assert (
        out
        == b"250 2.1.5 recipient OK\r\n" * 3
        + b"452 4.5.3 too many recipients: send the rest in another message\r\n" * 2
    )
    assert len(d.of(RcptTo)) == 3 and d.conn.recipients == 3
    assert d.conn.errors == 0  # not the client's fault
    d.feed(b"DATA\r\nx\r\n.\r\n")
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    assert (
        d.feed(b"RCPT TO:<u9@example.org>\r\n") == b"250 2.1.5 recipient OK\r\n"
    )  # per transaction


def test_refused_recipients_do_not_count_toward_the_limit(smtp):
    d = smtp(max_recipients=1)
    d.overrides[RcptTo] = lambda e: (
        Reply(550, "5.1.1", "no such user")
        if e.path.local_part == "x"
        else Reply(250, "2.1.5", "ok")
    )
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    out = d.feed(b"RCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\n")
    assert out == b"550 5.1.1 no such user\r\n250 2.1.5 ok\r\n"


def test_command_line_limit_is_1000_with_crlf(smtp):
    d = smtp()
    d.hello()
    ok = b"NOOP " + b"x" * (1000 - 7) + b"\r\n"
    assert len(ok) == 1000
    assert d.feed(ok) == b"250 2.0.0 OK\r\n"
    too_long = b"NOOP " + b"x" * (1000 - 6) + b"\r\n"
    # RFC 5321 §4.5.3.1.4; the rest of the line is dropped, the next line is a command again
    out = d.feed(too_long + b"NOOP\r\n")
    too_long_reply = b"500 5.5.6 line too long: commands are at most 1000 octets with CRLF\r\n"
    assert out == too_long_reply + b"250 2.0.0 OK\r\n"


def test_endless_line_is_refused_early_and_not_kept(smtp):
    d = smtp()
    out = d.feed(b"A" * 1500)
    assert out.startswith(b"500 5.5.6 ")
    assert d.conn.buffered_bytes == 0
    for _ in range(50):
        assert d.feed(b"B" * 10_000) == b""
        assert d.conn.buffered_bytes == 0
    assert d.feed(b"\r\nNOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_error_budget_closes_with_421(smtp):
    d = smtp(max_errors=3)
    out = d.feed(b"BOGUS\r\nBOGUS\r\nBOGUS\r\nNOOP\r\n")
    assert out == (
        b"500 5.5.2 command not recognized\r\n" * 3
        + b"421 4.7.0 too many errors, closing the connection\r\n"
    )
    assert d.errors[-1].fatal and d.conn.state is State.CLOSED
    assert d.of(RcptTo) == [] and d.events == []


def test_session_refusals_count_toward_the_budget(smtp):
    d = smtp(max_errors=2)
    d.overrides[RcptTo] = Reply(550, "5.1.1", "no such user")
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    out = d.feed(
        b"RCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\nRCPT TO:<z@example.org>\r\n"
    )
    no_user = b"550 5.1.1 no such user\r\n"
    assert out == no_user * 2 + b"421 4.7.0 too many errors, closing the connection\r\n"
    assert d.conn.state is State.CLOSED and len(d.of(RcptTo)) == 2


def test_delivered_message_resets_the_budget(smtp):
    d = smtp(max_errors=2)
    d.hello()
    d.feed(b"BOGUS\r\n")
    assert d.conn.errors == 1
    d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\n")
    assert d.conn.errors == 0
    assert d.feed(b"BOGUS\r\n") == b"500 5.5.2 command not recognized\r\n"
    assert d.conn.state is State.READY


def test_junk_commands_past_the_limit_count_as_errors(smtp):
    # Postfix's junk command limit: NOOP, RSET, VRFY and HELP are answered as usual, but past
    # the limit each one spends the error budget, so a pipelined flood ends with 421.
    d = smtp(max_junk_commands=4, max_errors=3)
    d.hello()
    out = d.feed(b"NOOP\r\nRSET\r\nVRFY x\r\nHELP\r\n")
    assert out.startswith(b"250 2.0.0 OK\r\n") and b"421" not in out and d.conn.errors == 0
    out = d.feed(b"NOOP\r\n" * 50)
    assert out == b"250 2.0.0 OK\r\n" * 3 + b"421 4.7.0 too many errors, closing the connection\r\n"
    assert d.conn.state is State.CLOSED


def test_delivered_message_resets_the_junk_count(smtp):
    d = smtp(max_junk_commands=2, max_errors=5)
    d.hello()
    d.feed(b"NOOP\r\nNOOP\r\nNOOP\r\n")
    assert d.conn.errors == 1
    d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\n")
    d.feed(b"NOOP\r\nNOOP\r\n")
    assert d.conn.errors == 0
