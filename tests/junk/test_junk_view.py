"""Scoring reads messages from courriel's parse exactly as it read them with ``email``.

``reference_tokens`` and ``reference_header`` are the tokeniser and the header reading as they
were written on the standard library (``email``, ``compat32``): every message of the corpora
below must give the same tokens and the same heuristics through ``courriel.junk.view`` --
most of them on its fast path (courriel's own parse), the odd ones on its fallback. The one
deliberate change is the text bound (``view.MAX_TEXT``, from 200,000 to 16,000 characters),
so the reference runs with the new bound; what the bound does to the filter's accuracy is
held by tests/integration/test_junk_learning.py.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, getaddresses

import pytest
from bench.corpus import Corpus

from courriel.junk import filter as junkfilter
from courriel.junk import heuristics, tokens, view
from courriel.mail.message import parse, prefixed
from courriel.testing.junkcorpus import corpus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# --- the reference: tokens and header as read with the email package ---------------------------

_WORD = re.compile(r"[^\W_]{3,24}")
_TAG = re.compile(r"<[^>]{0,2000}>")
_URL = re.compile(r"https?://([a-z0-9.-]{1,253})", re.IGNORECASE)
_ENTITY = re.compile(r"&[a-z#0-9]{1,10};", re.IGNORECASE)


def _ref_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):
        return ""
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError):
        return payload.decode("utf-8", "replace")


def _ref_words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if not w.isdigit()]


def reference_tokens(raw: bytes) -> tuple[str, ...]:
    msg = email.message_from_bytes(raw[: view.MAX_BYTES], policy=email.policy.compat32)
    found: dict[str, None] = {}

    def add(token: str) -> None:
        if len(found) < tokens.MAX_TOKENS:
            found[token] = None

    for word in _ref_words(str(msg.get("Subject", ""))):
        add("subject:" + word)
    for _name, address in getaddresses([str(v) for v in msg.get_all("From", [])])[:3]:
        domain = address.rpartition("@")[2].lower().strip()
        if domain:
            add("from:" + domain[:60])
    budget = view.MAX_TEXT
    for n, part in enumerate(msg.walk()):
        if n >= view.MAX_PARTS or budget <= 0:
            break
        kind = part.get_content_type()
        add("part:" + kind[:40])
        if part.get_content_maintype() != "text":
            continue
        text = _ref_text(part)[:budget]
        budget -= len(text)
        if kind == "text/html":
            for host in _URL.findall(text):
                add("url:" + host.lower()[:60])
            text = _ENTITY.sub(" ", _TAG.sub(" ", text))
        for word in _ref_words(text):
            if len(found) >= tokens.MAX_TOKENS:
                break
            add(word)
    return tuple(sorted(found))


def reference_header(raw: bytes) -> view.Header:
    end = raw.find(b"\r\n\r\n", 0, view.HEADER_LIMIT)
    head = raw[: end + 4] if end >= 0 else raw[: view.HEADER_LIMIT]
    msg = email.message_from_bytes(head, policy=email.policy.compat32)
    date = msg.get("Date")
    return view.Header(
        str(msg.get("Subject", "")),
        tuple(str(v) for v in msg.get_all("From", [])),
        None if date is None else str(date),
        str(msg.get("Message-ID", "")),
        msg.get_content_type(),
    )


# --- the corpora ----------------------------------------------------------------------------------


def _bench() -> list[bytes]:
    c = Corpus()
    out = [c.get(i).raw for i in range(60)]
    out += [c.get(i, size=size).raw for i in range(1, 9) for size in (4096, 65536, 300_000)]
    return out


def _variants() -> list[bytes]:
    """Shapes real mail takes, fast or not: folded fields, base64 and 8-bit text, charsets,
    nested multiparts, odd encodings and headers the fast path leaves to ``email``."""
    rng = random.Random(7)
    words = [
        "réunion",
        "Budget",
        "offer",
        "FREE",
        "naïve",
        "straße",
        "2024",
        "winner",
        "meeting",
        "ünïcode",
        "ΑΣ",
        "http",
    ]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    date = format_datetime(NOW - timedelta(days=rng.randint(0, 50)))
    subject = text(4).encode("ascii", "replace").decode()
    head = f"From: Anna <anna@partner.test>\r\nSubject: {subject}\r\nDate: {date}\r\n"
    body = text(200).encode()
    b64 = email.base64mime.body_encode(body).encode()
    out = [
        head.encode() + b"\r\n" + body,
        (
            head + 'Message-ID: <x@y>\r\nContent-Type: text/plain;\r\n\tcharset="iso-8859-1"\r\n'
            "\r\n"
        ).encode()
        + text(50).encode("latin-1", "replace"),
        (
            head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64"
            "\r\n\r\n"
        ).encode()
        + b64,
        (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode() + body,
        (head + "Content-Type: text/plain; charset=no-such-charset\r\n\r\n").encode() + body,
        (
            head + "Content-Type: TEXT/HTML\r\nContent-Transfer-Encoding: Quoted-Printable\r\n"
            '\r\n<p>caf=C3=A9 <a href=3D"http://Shop.test/x">x</a>&amp;</p>=\r\nmore'
        ).encode(),
        (
            head + "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
            "begin 644 x\r\n#86)C\r\n`\r\nend\r\n"
        ).encode(),
        (head + "Content-Type: text/plain; charset*=utf-8''x\r\n\r\n").encode() + body,
        (head + "Content-Type: text/plain (comment); charset=utf-8\r\n\r\n").encode() + body,
        (head + "Content-Type: message/rfc822\r\n\r\n").encode() + head.encode() + b"\r\nhi",
        (b"Subject: =?utf-8?q?caf=C3=A9?= prices\r\n\r\n") + body,
        b"Subject: caf\xc3\xa9 8-bit header\r\nFrom: \xc3\xa9 <e@x.test>\r\n\r\n" + body,
        b"From someone Mon Jan 1 00:00:00 2024\r\nSubject: mbox\r\n\r\n" + body,
        b"Subject: bare LF\nFrom: a@b.test\n\nbody words here\n",
        b"Subject: bare CR\r\n\r\nbody\rwords here\r\n",
        b" folded first\r\nSubject: x\r\n\r\nbody words",
        b"Subject : space before colon\r\n\r\nbody words",
        b"not a header line\r\nSubject: x\r\n\r\nbody words",
        b"Subject: no body at all",
        b"",
        b"\r\nno header at all",
        b"\xff\xfe garbage without header",
        head.encode() + b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nno boundary\r\n",
    ]
    inner = (
        b'Content-Type: multipart/alternative; boundary="in"\r\n\r\n--in\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n--in\r\n"
        b"Content-Type: text/html\r\n\r\n<b>" + body + b"</b>\r\n--in--\r\n"
    )
    out.append(
        head.encode() + b'Content-Type: multipart/mixed;\r\n boundary="out"\r\n\r\npreamble\r\n'
        b"--out\r\n" + inner + b"\r\n--out\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"\r\n--out--\r\nepilogue\r\n"
    )
    out.append(
        head.encode()
        + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nword%d part\r\n" % i for i in range(60))
        + b"--b--\r\n"
    )
    out.append(  # a base64 text part beyond the decoding bound: decoded from a prefix
        head.encode() + b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + email.base64mime.body_encode(text(40_000).encode()).encode()
    )
    out.append(  # one long quoted-printable line with no line end within the bound
        head.encode()
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + b"=C3=A9t=C3=A9 " * 20_000
    )
    return out


def _learning() -> list[bytes]:
    return [s.raw for s in corpus(20261206, 200, NOW)]


CORPORA = {"bench": _bench, "variants": _variants, "learning": _learning}


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_tokens_and_heuristics_are_those_of_the_email_package(name: str) -> None:
    fast = 0
    for raw in CORPORA[name]():
        seen = view.of(raw)
        fast += seen.fast
        assert tokens.of_view(seen) == reference_tokens(raw), raw[:200]
        assert seen.header == reference_header(raw), raw[:200]
        assert heuristics.check(raw, NOW, seen) == heuristics.check(raw, NOW)
    if name != "variants":
        assert fast == len(CORPORA[name]())  # plain mail never needs the email package
    else:
        assert 0 < fast < len(_variants())


def test_text_is_bounded() -> None:
    long = b"Subject: x\r\n\r\n" + b"".join(b"w%05dx " % i for i in range(20_000))
    seen = view.of(long)
    assert sum(len(t or "") for _, t in seen.parts) == view.MAX_TEXT
    assert "w00000x" in tokens.of_view(seen) and "w19999x" not in tokens.of_view(seen)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_a_parse_moved_past_trace_fields_is_the_parse_of_the_copy(name: str) -> None:
    prefix = (
        b"Return-Path: <a@partner.test>\r\nReceived: from mx.partner.test\r\n\tby mx.b.test\r\n"
        b"X-Spam-Score: 1.0\r\nX-Spam-Status: No, score=1.0\r\n"
    )
    for raw in CORPORA[name]():
        moved = prefixed(raw, parse(raw), prefix)
        if moved is None:
            assert raw[:1] in (b" ", b"\t")
            continue
        assert moved == parse(prefix + raw)
        assert moved.to_bytes() == parse(prefix + raw).to_bytes()
    plain = b"Subject: x\r\n\r\nhi"
    assert prefixed(plain, parse(plain), b"Subject: y\r\n") is None  # a field the parse reads


def test_read_gives_the_parse_the_heuristics_and_the_tokens() -> None:
    raw = _learning()[0]
    content = junkfilter.read(raw, NOW)
    assert content.meta == parse(raw)
    assert content.words == reference_tokens(raw)
    assert list(content.reasons) == heuristics.check(raw, NOW)


def test_words_are_the_patterns_matches_lowered() -> None:
    """The split-based word scan gives ``_WORD.findall`` lowered, on any text: ASCII and
    not, long runs cut at 24, underscores, non-breaking spaces, dashes, apostrophes, Greek
    final sigma, letters whose lower case is longer (İ), ligatures and combining marks."""
    rng = random.Random(11)
    alphabet = "abcXYZ019_-' é ΑΣσς İı\u00a0\u2014\u2019Ǆǅ ß ﬁ\u0301 x\t\r\n.,<>"
    samples = [" ".join(["Réunion", "x" * 60, "ΣΑΣ", "ΑΣ.", "a_b", "İstanbul", "1234"])]
    for _ in range(2000):
        n = rng.randint(0, 80)
        samples.append("".join(rng.choice(alphabet) for _ in range(n)) + "a" * rng.randint(0, 60))
    for text in samples:
        expected = list(dict.fromkeys(m.lower() for m in _WORD.findall(text)))
        assert list(dict.fromkeys(tokens._words(text))) == expected, text


def test_addresses_are_getaddresses_remembered_or_not() -> None:
    short = ('"Anna" <anna@partner.test>',)
    long = (", ".join(f"user{i} <user{i}@partner.test>" for i in range(100)),)
    for values in (short, long, short):
        assert view.addresses(values) == tuple(getaddresses(list(values)))
