"""BURL (RFC 4468) in the SMTP core: where it is allowed, and its content joining the message."""

from __future__ import annotations

from courriel.wire.smtp import BdatLast, Reply, State
from courriel.wire.smtp import replies as r
from courriel.wire.smtp.events import BurlUrl

URL = "imap://a%40b@h/Drafts/;uid=1;urlauth=submit+a%40b:internal:" + "0" * 64


def burl_session(smtp, content: dict[str, bytes], answers: list[object] | None = None, **config):
    config.setdefault("auth_mechanisms", ("PLAIN",))
    config.setdefault("tls_active", True)
    d = smtp(burl=True, **config)
    d.hello()

    def fetched(event: BurlUrl) -> Reply:
        data = content.get(event.url)
        if data is None:
            return r.BURL_UNRESOLVED
        answer = d.conn.burl_data(data)
        if answers is not None:
            answers.append(answer)
        return answer if isinstance(answer, Reply) else d.reply_for(answer)

    d.overrides[BurlUrl] = fetched
    return d


def test_burl_is_offered_and_needs_authentication_and_a_recipient(smtp) -> None:
    d = burl_session(smtp, {})
    assert b"250-BURL imap\r\n" in d.feed(b"EHLO again.example\r\n")
    assert d.feed(f"BURL {URL} LAST\r\n".encode()).startswith(b"503 ")  # no transaction
    d.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
    assert d.feed(f"BURL {URL} LAST\r\n".encode()).startswith(b"530 5.7.0 ")  # not logged in
    assert b"BURL" not in smtp().conn.ehlo_reply().encode()  # off unless configured


def test_content_joins_bdat_chunks_and_a_failure_ends_the_transaction(smtp) -> None:
    answers: list[object] = []
    d = burl_session(smtp, {URL: b"Subject: x\r\n\r\nbody\r\n"}, answers)
    d.feed(b"AUTH PLAIN AGEAYg==\r\n")
    d.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
    assert d.feed(b"BDAT 6\r\nX-A: 1") == b"250 2.0.0 6 octets received\r\n"
    assert d.feed(b"BDAT 2\r\n\r\n") == b"250 2.0.0 2 octets received\r\n"
    assert d.feed(f"BURL {URL} last\r\n".encode()) == r.QUEUED.encode()
    [message] = answers
    assert isinstance(message, BdatLast)
    assert message.message == b"X-A: 1\r\nSubject: x\r\n\r\nbody\r\n"
    assert d.conn.state is State.READY
    d.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
    assert d.feed(b"BURL imap://elsewhere LAST\r\n").startswith(b"554 5.6.6 ")
    assert d.conn.state is State.READY  # RFC 4468: nothing is left of the transaction
    assert d.feed(b"BURL\r\n").startswith(b"501 5.5.4 ")
