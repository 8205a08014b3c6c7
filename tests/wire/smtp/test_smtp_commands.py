"""RFC 5321 commands and their order: transcripts of client bytes in, events and replies out."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.smtp import (
    Closed,
    Data,
    Ehlo,
    Helo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SmtpConfig,
    SmtpConnection,
    State,
    UsageError,
    Vrfy,
)
from courriel.wire.smtp import replies as r


def test_greeting_names_the_host(smtp):
    d = smtp()
    assert d.greeting == b"220 mx.example.org ESMTP ready\r\n"
    assert d.conn.state is State.FRESH


def test_full_transaction(smtp):
    d = smtp()
    out = d.feed(b"EHLO client.example.net\r\n")
    assert out.startswith(b"250-mx.example.org\r\n250-PIPELINING\r\n")
    assert out.endswith(b"\r\n") and out.count(b"250 ") == 1
    assert d.feed(b"MAIL FROM:<alice@example.net>\r\n") == b"250 2.1.0 sender OK\r\n"
    assert d.feed(b"RCPT TO:<bob@example.org>\r\n") == b"250 2.1.5 recipient OK\r\n"
    assert d.feed(b"DATA\r\n") == b"354 send the message, end with <CR><LF>.<CR><LF>\r\n"
    assert d.feed(b"Subject: hi\r\n\r\nhello\r\n.\r\n") == b"250 2.0.0 message accepted\r\n"
    assert d.feed(b"QUIT\r\n") == b"221 2.0.0 bye\r\n"
    assert d.conn.state is State.CLOSED
    assert d.conn.next_event() == Closed()
    [ehlo] = d.of(Ehlo)
    assert ehlo == Ehlo("client.example.net", True)
    [mail] = d.of(MailFrom)
    assert mail.path.address == "alice@example.net" and mail.raw == "<alice@example.net>"
    [rcpt] = d.of(RcptTo)
    assert rcpt.path.local_part == "bob" and rcpt.path.domain == "example.org"
    [msg] = d.of(MessageData)
    assert msg.message == b"Subject: hi\r\n\r\nhello\r\n"
    assert [type(e) for e in d.events][-3:] == [Data, MessageData, Quit]


def test_helo_gives_plain_reply_and_no_extensions(smtp):
    d = smtp()
    assert d.feed(b"HELO client.example.net\r\n") == b"250 mx.example.org\r\n"
    assert d.of(Helo) == [Helo("client.example.net", True)]
    # RFC 5321 §4.1.1.11: parameters belong to ESMTP, which HELO did not start
    assert d.feed(b"MAIL FROM:<a@example.net> SIZE=10\r\n").startswith(b"555 5.5.4 ")
    assert d.feed(b"MAIL FROM:<a@example.net>\r\n") == b"250 2.1.0 sender OK\r\n"


def test_ehlo_with_odd_name_is_reported_not_refused(smtp):
    d = smtp()
    d.feed(b"EHLO my_laptop\r\n")
    assert d.of(Ehlo) == [Ehlo("my_laptop", False)]
    d2 = smtp()
    d2.feed(b"EHLO [192.0.2.1]\r\n")
    assert d2.of(Ehlo) == [Ehlo("[192.0.2.1]", True)]


def test_ehlo_without_argument(smtp):
    d = smtp()
    assert d.feed(b"EHLO\r\n") == b"501 5.5.4 Syntax: EHLO hostname\r\n"
    assert d.feed(b"HELO \r\n") == b"501 5.5.4 Syntax: HELO hostname\r\n"
    assert d.conn.state is State.FRESH


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"MAIL FROM:<a@example.net>\r\n", b"503 5.5.1 send EHLO or HELO first\r\n"),
        (b"RCPT TO:<a@example.net>\r\n", b"503 5.5.1 send EHLO or HELO first\r\n"),
        (b"DATA\r\n", b"503 5.5.1 send EHLO or HELO first\r\n"),
        (b"STARTTLS\r\n", b"503 5.5.1 send EHLO first: this is an ESMTP extension\r\n"),
        (b"AUTH PLAIN\r\n", b"503 5.5.1 send EHLO first: this is an ESMTP extension\r\n"),
    ],
)
def test_commands_before_hello(smtp, command, reply):
    d = smtp(tls_available=True, auth_mechanisms=("PLAIN",))
    assert d.feed(command) == reply
    assert d.events == []


def test_sequence_errors_inside_the_session(smtp):
    d = smtp()
    d.hello()
    assert d.feed(b"RCPT TO:<b@example.org>\r\n") == b"503 5.5.1 send MAIL FROM first\r\n"
    assert d.feed(b"DATA\r\n") == b"503 5.5.1 send MAIL FROM first\r\n"
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    assert d.feed(b"DATA\r\n") == b"503 5.5.1 send RCPT TO first\r\n"
    assert d.feed(b"MAIL FROM:<a@example.net>\r\n").startswith(b"503 5.5.1 a mail transaction")
    assert d.conn.state is State.MAIL


def test_refused_mail_opens_no_transaction(smtp):
    d = smtp()
    d.overrides[MailFrom] = Reply(550, "5.7.1", "you may only send as addresses you own")
    d.hello()
    out = d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
    assert out == (
        b"550 5.7.1 you may only send as addresses you own\r\n503 5.5.1 send MAIL FROM first\r\n"
    )
    assert d.conn.state is State.READY


def test_refused_recipients_do_not_allow_data(smtp):
    d = smtp()
    d.overrides[RcptTo] = Reply(550, "5.1.1", "no such user here")
    d.hello()
    out = d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
    assert out.endswith(b"550 5.1.1 no such user here\r\n503 5.5.1 send RCPT TO first\r\n")
    assert d.conn.recipients == 0


@pytest.mark.parametrize("reset", [b"RSET\r\n", b"EHLO again.example.net\r\n"])
def test_rset_and_ehlo_end_the_transaction(smtp, reset):
    d = smtp()
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
    assert d.conn.state is State.RCPT
    out = d.feed(reset)
    assert out.startswith(b"250")
    assert d.conn.state is State.READY and d.conn.recipients == 0  # RFC 5321 §4.1.1.1, §4.1.1.5
    assert d.feed(b"RCPT TO:<b@example.org>\r\n") == b"503 5.5.1 send MAIL FROM first\r\n"


def test_rset_before_ehlo_keeps_asking_for_ehlo(smtp):
    d = smtp()
    assert d.feed(b"RSET\r\n") == b"250 2.0.0 reset\r\n"
    assert d.conn.state is State.FRESH
    assert d.feed(b"MAIL FROM:<a@example.net>\r\n") == b"503 5.5.1 send EHLO or HELO first\r\n"


def test_noop_vrfy_help(smtp):
    d = smtp()
    assert d.feed(b"NOOP hello there\r\n") == b"250 2.0.0 OK\r\n"
    assert d.of(Noop) == [Noop("hello there")]
    assert d.feed(b"VRFY bob\r\n").startswith(b"252 2.0.0 ")
    assert d.of(Vrfy) == [Vrfy("bob")]
    assert d.feed(b"VRFY\r\n") == b"501 5.5.4 Syntax: VRFY address\r\n"
    out = d.feed(b"HELP\r\n")
    assert out.startswith(b"214-2.0.0 commands: EHLO") and out.endswith(
        b"214 2.0.0 see RFC 5321 for their use\r\n"
    )


def test_unknown_command_and_expn(smtp):
    d = smtp()
    assert d.feed(b"FOO bar\r\n") == b"500 5.5.2 command not recognized\r\n"
    assert d.feed(b"EXPN staff\r\n").startswith(b"502 5.5.1 EXPN is not available")
    assert d.events == []


def test_verbs_are_case_insensitive(smtp):
    d = smtp()
    d.feed(b"ehlo client.example.net\r\n")
    assert d.feed(b"mail from:<a@example.net>\r\n") == b"250 2.1.0 sender OK\r\n"
    assert d.feed(b"Rcpt To:<b@example.org>\r\n") == b"250 2.1.5 recipient OK\r\n"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"MAIL FROM:a@example.net\r\n", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (b"MAIL TO:<a@example.net>\r\n", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (b"MAIL FROM:<a@example.net>X\r\n", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (
            b"MAIL FROM:<a@@example.net>\r\n",
            b"501 5.1.7 bad sender address syntax: use <local-part@domain>\r\n",
        ),
        (
            b"MAIL FROM:<a@b@example.net>\r\n",
            b"501 5.1.7 bad sender address syntax: use <local-part@domain>\r\n",
        ),
        (b"RSET now\r\n", b"501 5.5.4 Syntax: RSET (no arguments)\r\n"),
        (b"QUIT now\r\n", b"501 5.5.4 Syntax: QUIT (no arguments)\r\n"),
    ],
)
def test_syntax_errors(smtp, command, reply):
    d = smtp()
    d.hello()
    assert d.feed(command) == reply
    assert d.conn.state is State.READY


def test_mail_from_tolerates_a_space_after_the_colon(smtp):
    d = smtp()
    d.hello()
    assert d.feed(b"MAIL FROM: <a@example.net>\r\n") == b"250 2.1.0 sender OK\r\n"


def test_null_sender_and_postmaster(smtp):
    d = smtp()
    d.hello()
    d.feed(b"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n")
    [mail] = d.of(MailFrom)
    assert mail.path is None  # RFC 5321 §4.5.5
    [rcpt] = d.of(RcptTo)
    assert rcpt.path.address == "Postmaster" and rcpt.path.domain == ""  # §4.1.1.3


def test_rset_is_reported_and_quit_closes(smtp):
    d = smtp()
    d.feed(b"RSET\r\nQUIT\r\nNOOP\r\n")
    assert [type(e) for e in d.events] == [Rset, Quit]
    assert d.conn.state is State.CLOSED


def test_greeting_554_allows_only_quit(smtp):
    conn = SmtpConnection(SmtpConfig(hostname="mx.example.org"))
    out = conn.greeting(Reply(554, "", "mx.example.org no service for you"))
    assert out == b"554 mx.example.org no service for you\r\n"
    conn.receive_data(b"EHLO x.example\r\nQUIT\r\n")
    with pytest.raises(ProtocolError) as e:
        conn.next_event()
    assert e.value.reply == b"503 5.5.1 service refused at connect; only QUIT is accepted\r\n"
    assert conn.next_event() == Quit()  # RFC 5321 §3.1


def test_control_characters_and_bad_utf8_in_commands(smtp):
    d = smtp()
    assert (
        d.feed(b"NOOP \x00\r\n")
        == b"500 5.5.2 command holds control characters or invalid UTF-8\r\n"
    )
    assert (
        d.feed(b"NOOP \xff\xfe\r\n")
        == b"500 5.5.2 command holds control characters or invalid UTF-8\r\n"
    )
    assert d.events == []


@pytest.mark.parametrize("line", [b"NOOP\n", b"NOOP\rNOOP\r\n"])
def test_bare_line_ends_in_commands_are_refused(smtp, line):
    d = smtp()
    assert d.feed(line) == b"500 5.5.2 bare LF/CR is not allowed: end commands with CRLF\r\n"
    assert d.events == []


def test_session_must_answer_before_next_event():
    conn = SmtpConnection(SmtpConfig(hostname="mx.example.org"))
    conn.greeting()
    conn.receive_data(b"NOOP\r\nNOOP\r\n")
    assert conn.next_event() == Noop("")
    with pytest.raises(UsageError):
        conn.next_event()
    conn.send(r.NOOP_OK)
    assert conn.next_event() == Noop("")


def test_send_without_event_is_a_usage_error_but_421_is_always_allowed():
    conn = SmtpConnection(SmtpConfig(hostname="mx.example.org"))
    conn.greeting()
    with pytest.raises(UsageError):
        conn.send(r.OK)
    assert conn.send(r.SHUTTING_DOWN) == b"421 4.3.2 server is shutting down, try again later\r\n"
    assert conn.state is State.CLOSED


def test_pipelined_commands_come_out_one_by_one_in_order(smtp):
    # RFC 2920 §3.1: a whole group in one packet, replies in order
    d = smtp()
    d.overrides[RcptTo] = lambda e: (
        r.RECIPIENT_OK if e.path.local_part != "nobody" else Reply(550, "5.1.1", "no such user")
    )
    out = d.feed(
        b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<nobody@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
    )
    lines = out.split(b"\r\n")
    codes = [line[:4] for line in lines if line[3:4] == b" "]
    assert codes == [b"250 ", b"250 ", b"250 ", b"550 ", b"250 ", b"354 "]
    assert [e.path.local_part for e in d.of(RcptTo)] == ["b", "nobody", "c"]
    assert d.conn.recipients == 2
    assert d.conn.state is State.DATA
