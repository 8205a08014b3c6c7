"""ESMTP: the EHLO answer, SIZE, BODY, SMTPUTF8, DSN, STARTTLS and AUTH framing."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.smtp import (
    Auth,
    AuthResponse,
    Body,
    MailFrom,
    Notify,
    RcptTo,
    Reply,
    Ret,
    SmtpConfig,
    SmtpConnection,
    StartTls,
    State,
    challenge,
)
from courriel.wire.smtp import replies as r


def ehlo_lines(out: bytes) -> list[bytes]:
    return [line[4:] for line in out.split(b"\r\n") if line]


def test_ehlo_lists_what_is_offered(smtp):
    d = smtp(max_message_bytes=12345, tls_available=True)
    out = d.feed(b"EHLO c.example\r\n")
    assert ehlo_lines(out) == [
        b"mx.example.org",
        b"PIPELINING",
        b"SIZE 12345",
        b"8BITMIME",
        b"ENHANCEDSTATUSCODES",
        b"SMTPUTF8",
        b"CHUNKING",
        b"BINARYMIME",
        b"DSN",
        b"STARTTLS",
    ]
    assert out.startswith(b"250-") and b"\r\n250 STARTTLS\r\n" in out


def test_ehlo_without_optional_extensions(smtp):
    d = smtp(smtputf8=False, chunking=False, dsn=False)
    lines = ehlo_lines(d.feed(b"EHLO c.example\r\n"))
    assert lines[1:] == [b"PIPELINING", b"SIZE 52428800", b"8BITMIME", b"ENHANCEDSTATUSCODES"]
    d.feed(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
    assert d.feed(b"BDAT 3 LAST\r\nabc").startswith(b"502 5.5.1 ")


def test_size_parameter(smtp):
    d = smtp(max_message_bytes=1000)
    d.hello()
    assert d.feed(b"MAIL FROM:<a@example.net> SIZE=1001\r\n") == (
        b"552 5.3.4 message too big: the limit is 1000 octets\r\n"  # RFC 1870 §6
    )
    assert d.conn.state is State.READY
    assert d.feed(b"MAIL FROM:<a@example.net> SIZE=1000\r\n") == b"250 2.1.0 sender OK\r\n"
    assert d.of(MailFrom)[0].params.size == 1000


@pytest.mark.parametrize(
    ("params", "reply"),
    [
        (b"SIZE=abc", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"SIZE", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"BODY=9BIT", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"SIZE=1 SIZE=2", b"501 5.5.4 a MAIL/RCPT parameter was given twice\r\n"),
        (b"XFOO=1", b"555 5.5.4 MAIL/RCPT parameter not recognized or not offered\r\n"),
        (b"SMTPUTF8=yes", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"RET=SOME", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"ENVID=a+zz", b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"ENVID=" + b"x" * 101, b"501 5.5.4 invalid value for a MAIL/RCPT parameter\r\n"),
        (b"AUTH=<>", b"555 5.5.4 MAIL/RCPT parameter not recognized or not offered\r\n"),
    ],
)
def test_bad_mail_parameters(smtp, params, reply):
    d = smtp()
    d.hello()
    assert d.feed(b"MAIL FROM:<a@example.net> " + params + b"\r\n") == reply
    assert d.of(MailFrom) == []


def test_mail_parameters_are_decoded(smtp):
    d = smtp()
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>  body=8bitmime RET=HDRS ENVID=QQ+2B+3Dx\r\n")
    [mail] = d.of(MailFrom)
    assert mail.params.body is Body.EIGHT_BIT_MIME
    assert mail.params.ret is Ret.HDRS
    assert mail.params.envid == "QQ+=x"  # RFC 3461 §4 xtext
    assert mail.params.raw == (("BODY", "8bitmime"), ("RET", "HDRS"), ("ENVID", "QQ+2B+3Dx"))


def test_dsn_recipient_parameters(smtp):
    d = smtp()
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    out = d.feed(
        b"RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+40example.org\r\n"
        b"RCPT TO:<c@example.org> NOTIFY=NEVER\r\n"
        b"RCPT TO:<d@example.org> NOTIFY=NEVER,SUCCESS\r\n"
        b"RCPT TO:<e@example.org> ORCPT=rfc822\r\n"
        b"RCPT TO:<f@example.org> NOTIFY=FAILURE,FAILURE\r\n"
    )
    assert out.count(b"250 2.1.5") == 2 and out.count(b"501 5.5.4 ") == 3
    first, second = d.of(RcptTo)
    assert first.params.notify == frozenset({Notify.SUCCESS, Notify.DELAY})
    assert (first.params.orcpt_type, first.params.orcpt) == ("rfc822", "b@example.org")
    assert second.params.notify == frozenset()  # NEVER


def test_dsn_parameters_refused_when_not_offered(smtp):
    d = smtp(dsn=False)
    d.hello()
    assert d.feed(b"MAIL FROM:<a@example.net> RET=FULL\r\n").startswith(b"555 5.5.4 ")
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    assert d.feed(b"RCPT TO:<b@example.org> NOTIFY=NEVER\r\n").startswith(b"555 5.5.4 ")


def test_utf8_addresses_need_smtputf8(smtp):
    d = smtp()
    d.hello()
    out = d.feed("MAIL FROM:<jörg@example.net>\r\n".encode())
    assert out == b"553 5.6.7 non-ASCII address: send MAIL FROM with SMTPUTF8\r\n"  # RFC 6531
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    out = d.feed("RCPT TO:<用户@例子.广告>\r\n".encode())
    assert out.startswith(b"553 5.6.7 ")
    d.feed(b"RSET\r\n")
    d.feed("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode())
    out = d.feed("RCPT TO:<用户@例子.广告>\r\n".encode())
    assert out == b"250 2.1.5 recipient OK\r\n"
    plain, mail = d.of(MailFrom)
    assert not plain.params.smtputf8
    assert mail.params.smtputf8 and mail.path.domain == "bücher.example"
    assert d.of(RcptTo)[0].path.local_part == "用户"


def test_smtputf8_not_offered(smtp):
    d = smtp(smtputf8=False)
    d.hello()
    assert d.feed("MAIL FROM:<jörg@example.net> SMTPUTF8\r\n".encode()).startswith(b"555 5.5.4")


# --- STARTTLS (RFC 3207) ------------------------------------------------------------------


def test_starttls_then_fresh_session(smtp):
    d = smtp(tls_available=True)
    d.hello()
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    assert d.feed(b"STARTTLS\r\n").startswith(b"503 5.5.1 not allowed during a mail transaction")
    d.feed(b"RSET\r\n")
    assert d.feed(b"STARTTLS\r\n") == b"220 2.0.0 ready to start TLS\r\n"
    assert d.conn.state is State.TLS and not d.conn.trailing_data
    d.conn.tls_started()
    assert d.conn.tls_active and d.conn.state is State.FRESH  # RFC 3207 §4.2
    assert d.feed(b"MAIL FROM:<a@example.net>\r\n") == b"503 5.5.1 send EHLO or HELO first\r\n"
    out = d.feed(b"EHLO c.example\r\n")
    assert b"STARTTLS" not in out
    assert d.feed(b"STARTTLS\r\n") == b"503 5.5.1 TLS is already active\r\n"


def test_data_pipelined_after_starttls_is_never_executed(smtp):
    d = smtp(tls_available=True)
    d.hello()
    out = d.feed(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n")
    assert out == b"220 2.0.0 ready to start TLS\r\n"
    assert d.conn.trailing_data  # to be thrown away before TLS
    with pytest.raises(ProtocolError) as e:
        d.conn.tls_started()
    assert e.value.fatal
    assert d.conn.state is State.CLOSED
    assert d.of(MailFrom) == [] and isinstance(d.events[-1], StartTls)


def test_data_pipelined_after_starttls_can_be_discarded_before_tls(smtp):
    d = smtp(tls_available=True)
    d.hello()
    injected = b"MAIL FROM:<evil@example.net>\r\n"
    assert d.feed(b"STARTTLS\r\n" + injected) == b"220 2.0.0 ready to start TLS\r\n"
    assert d.conn.discard_trailing_data() == len(injected)  # RFC 3207 §4.2: never run
    assert not d.conn.trailing_data
    d.conn.tls_started()
    assert d.conn.tls_active and d.conn.state is State.FRESH
    assert d.feed(b"EHLO c.example\r\n").startswith(b"250-")
    assert d.of(MailFrom) == []


def test_starttls_not_offered(smtp):
    d = smtp()
    d.hello()
    assert d.feed(b"STARTTLS\r\n") == b"502 5.5.1 STARTTLS is not offered here\r\n"
    d2 = smtp(tls_available=True)
    d2.hello()
    assert d2.feed(b"STARTTLS now\r\n") == b"501 5.5.4 Syntax: STARTTLS (no arguments)\r\n"


# --- AUTH (RFC 4954) ----------------------------------------------------------------------


def submission(smtp, **config):
    config.setdefault("auth_mechanisms", ("PLAIN", "LOGIN"))
    config.setdefault("tls_active", True)
    d = smtp(**config)
    d.hello()
    return d


def test_auth_offered_only_under_tls(smtp):
    d = smtp(tls_available=True, auth_mechanisms=("PLAIN", "LOGIN"))
    out = d.feed(b"EHLO c.example\r\n")
    assert b"AUTH" not in out
    assert (
        d.feed(b"AUTH PLAIN\r\n") == b"530 5.7.0 send STARTTLS first: authentication needs TLS\r\n"
    )
    d.feed(b"STARTTLS\r\n")
    d.conn.tls_started()
    assert b"250 AUTH PLAIN LOGIN\r\n" in d.feed(b"EHLO c.example\r\n")


def test_auth_plain_with_initial_response(smtp):
    d = submission(smtp)
    assert (
        d.feed(b"AUTH plain AGFsaWNlAHNlY3JldA==\r\n") == b"235 2.7.0 authentication succeeded\r\n"
    )
    assert d.of(Auth) == [Auth("PLAIN", b"\x00alice\x00secret")]
    assert d.conn.authenticated
    assert d.feed(b"AUTH PLAIN\r\n") == b"503 5.5.1 already authenticated\r\n"


def test_auth_login_exchange(smtp):
    d = submission(smtp)
    steps = iter([challenge(b"Username:"), challenge(b"Password:"), r.AUTH_OK])
    d.overrides[Auth] = lambda e: next(steps)
    d.overrides[AuthResponse] = lambda e: next(steps)
    assert d.feed(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert d.conn.state is State.AUTH
    assert d.feed(b"YWxpY2U=\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert d.feed(b"c2VjcmV0\r\n") == b"235 2.7.0 authentication succeeded\r\n"
    assert [e.data for e in d.of(AuthResponse)] == [b"alice", b"secret"]
    assert d.conn.state is State.READY and d.conn.authenticated


def test_auth_cancel_and_bad_base64(smtp):
    d = submission(smtp)
    d.overrides[Auth] = challenge(b"")
    assert d.feed(b"AUTH LOGIN\r\n") == b"334 \r\n"
    assert d.feed(b"*\r\n") == b"501 5.0.0 authentication cancelled\r\n"  # RFC 4954 §4
    assert d.conn.state is State.READY and not d.conn.authenticated
    d.feed(b"AUTH LOGIN\r\n")
    assert d.feed(b"not base64!\r\n") == b"501 5.5.2 cannot decode the response: send base64\r\n"
    assert d.conn.state is State.READY
    assert d.feed(b"AUTH PLAIN %%%\r\n").startswith(b"501 5.5.2 ")


def test_auth_failure_and_empty_initial_response(smtp):
    d = submission(smtp)
    d.overrides[Auth] = r.AUTH_FAILED
    assert d.feed(b"AUTH PLAIN =\r\n").startswith(b"535 5.7.8 ")
    assert d.of(Auth) == [Auth("PLAIN", b"")]
    assert not d.conn.authenticated and d.conn.state is State.READY


def test_auth_refusals(smtp):
    d = submission(smtp)
    assert d.feed(b"AUTH CRAM-MD5\r\n") == b"504 5.5.4 unrecognized authentication mechanism\r\n"
    assert d.feed(b"AUTH\r\n") == b"501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
    d.feed(b"MAIL FROM:<a@example.net>\r\n")
    assert d.feed(b"AUTH PLAIN\r\n").startswith(b"503 5.5.1 not allowed during a mail transaction")
    d2 = smtp()
    d2.hello()
    assert d2.feed(b"AUTH PLAIN\r\n") == b"503 5.5.1 authentication is not offered here\r\n"


def test_auth_line_may_be_long_but_not_endless(smtp):
    d = submission(smtp)
    d.overrides[Auth] = challenge(b"")
    d.feed(b"AUTH PLAIN\r\n")
    long_line = b"QUFB" * 2000 + b"\r\n"  # 8002 octets: over 1000, under 12288 (RFC 4954 §4)
    assert d.feed(long_line) == b"235 2.7.0 authentication succeeded\r\n"
    d2 = submission(smtp)
    d2.overrides[Auth] = challenge(b"")
    d2.feed(b"AUTH PLAIN\r\n")
    assert d2.feed(b"QUFB" * 4000) == b"500 5.5.6 authentication line too long\r\n"
    assert d2.feed(b"QUFB\r\nNOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_mail_auth_parameter(smtp):
    d = submission(smtp)
    d.feed(b"MAIL FROM:<a@example.net> AUTH=a+40example.net\r\n")
    assert d.of(MailFrom)[0].params.auth == "a@example.net"  # RFC 4954 §5


def test_starttls_forgets_plaintext_authentication(smtp):
    d = smtp(tls_available=True, auth_mechanisms=("PLAIN",), auth_requires_tls=False)
    d.hello()
    d.feed(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
    assert d.conn.authenticated
    d.feed(b"STARTTLS\r\n")
    d.conn.tls_started()
    assert not d.conn.authenticated  # RFC 3207 §4.2
    d.hello()
    assert d.feed(b"AUTH PLAIN =\r\n") == b"235 2.7.0 authentication succeeded\r\n"


def test_legacy_auth_line(smtp):
    d = smtp(tls_active=True, auth_mechanisms=("PLAIN", "LOGIN"), legacy_auth_line=True)
    out = d.feed(b"EHLO c.example\r\n")
    assert out.endswith(b"250-AUTH PLAIN LOGIN\r\n250 AUTH=PLAIN LOGIN\r\n")


def test_non_canonical_base64_is_refused(smtp):
    d = submission(smtp)
    # "YR==" decodes to b"a" but with non-zero pad bits: RFC 4648 §3.5
    assert d.feed(b"AUTH PLAIN YR==\r\n").startswith(b"501 5.5.2 ")
    assert d.feed(b"AUTH PLAIN YQ==\r\n") == b"235 2.7.0 authentication succeeded\r\n"
    assert d.of(Auth) == [Auth("PLAIN", b"a")]


def test_auth_on_plain_connection_when_allowed(smtp):
    d = smtp(auth_mechanisms=("PLAIN",), auth_requires_tls=False)
    assert b"250 AUTH PLAIN\r\n" in d.feed(b"EHLO c.example\r\n")


def test_config_rejects_impossible_limits():
    with pytest.raises(ValueError, match="512"):
        SmtpConfig(hostname="h", max_line=100)
    with pytest.raises(ValueError, match="upper"):
        SmtpConfig(hostname="h", auth_mechanisms=("plain",))


def test_reply_cannot_carry_line_breaks():
    with pytest.raises(ValueError, match="CR"):
        Reply(550, "5.7.1", "no\r\n250 ok")
    with pytest.raises(ValueError, match="range"):
        Reply(99, "", "x")
    conn = SmtpConnection(SmtpConfig(hostname="h"))
    assert conn.greeting(Reply(421, "", "h busy")) == b"421 h busy\r\n"
    assert conn.state is State.CLOSED
