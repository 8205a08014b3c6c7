"""A reproducible corpus of realistic messages, made from a seed instead of stored as data.

Theory of operation
-------------------
``Corpus(seed)`` hands out messages by index: message ``i`` is always the same bytes for the same
seed, because each one is built from its own ``random.Random`` seeded with ``(seed, i)`` and
never from the clock. Kinds follow what mailboxes hold: plain text, multipart/alternative
(text and HTML), multipart/mixed with a base64 attachment, and replies that continue a thread
(In-Reply-To and References pointing at an earlier message of the same corpus). About one
message in four has non-ASCII header text, sent as RFC 2047 encoded words, and bodies carry
UTF-8 in quoted-printable.

Sizes run from 2 KB to 1 MB: ``size_of(i)`` draws from a log-normal centred near 10 KB,
clamped, so most messages are small and a few are large, as in real mail. ``message(size=...)``
makes one message of a chosen size (the SMTP workload's 4 KB and 64 KB); a second build from
the same random state corrects the first one's estimate, so the result is within 1 % of the
target.

Every line ends in CRLF and stays under 998 octets (RFC 5322 §2.1.1), so the same bytes can be
sent over SMTP, appended over IMAP and written to a Maildir.
"""

from __future__ import annotations

import base64
import enum
import math
import quopri
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header

DEFAULT_SEED = 20261127
MIN_SIZE = 2 * 1024
MAX_SIZE = 1024 * 1024
DOMAIN = "example.test"
_BASE_DATE = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "invoice",
    "meeting",
    "report",
    "budget",
    "quarter",
    "release",
    "server",
    "mailbox",
    "schedule",
    "review",
    "draft",
    "project",
    "courrier",
    "réunion",
    "été",
    "déjà",
    "façon",
    "naïve",
    "über",
    "straße",
    "größe",
    "café",
    "crème",
    "ñandú",
    "señor",
    "año",
]
_TABLE = [_WORDS[i % len(_WORDS)] for i in range(256)]  # byte -> word
_NAMES = (
    ("Alice Martin", "alice"),
    ("Bob Durand", "bob"),
    ("Chloé Lefèvre", "chloe"),
    ("Jürgen Müller", "juergen"),
    ("Zoë Ångström", "zoe"),
    ("Carol Smith", "carol"),
    ("Dmitri Ivanov", "dmitri"),
    ("Élodie Bernard", "elodie"),
)
_SUBJECTS = (
    "Quarterly report",
    "Meeting on Thursday",
    "Budget review",
    "Release notes",
    "Réunion de l'équipe",
    "Déjà vu: the build again",
    "Größenänderung der Tabelle",
    "Lunch?",
    "Invoice 2026-{n}",
    "Server maintenance window",
)


class Kind(enum.Enum):
    PLAIN = "plain"
    ALTERNATIVE = "alternative"
    ATTACHMENT = "attachment"
    REPLY = "reply"


_KIND_WEIGHTS = ((Kind.PLAIN, 40), (Kind.ALTERNATIVE, 25), (Kind.ATTACHMENT, 15), (Kind.REPLY, 20))


@dataclass(frozen=True, slots=True)
class Message:
    index: int
    kind: Kind
    raw: bytes
    subject: str
    message_id: str


def _encoded(text: str) -> str:
    """The header text as is when ASCII, else RFC 2047 encoded words (RFC 2047 §2)."""
    if text.isascii():
        return text
    return Header(text, "utf-8", maxlinelen=76).encode()


def _address(name: str, local: str) -> str:
    return f"{_encoded(name)} <{local}@{DOMAIN}>"


def message_id(seed: int, index: int) -> str:
    return f"<{index}.{seed}@corpus.{DOMAIN}>"


def _paragraphs(rng: random.Random, size: int) -> str:
    """Prose of about ``size`` characters: lines of ten words, a blank line now and then."""
    # Words are drawn a byte each from ``randbytes``: a 1 MB body is 170,000 words, and
    # one ``choice`` call per word would make the corpus slower to build than to measure.
    lines: list[str] = []
    total = 0
    while total < size:
        draw = rng.randbytes(11 * 64)
        for k in range(0, len(draw), 11):
            line = " ".join([_TABLE[b] for b in draw[k : k + 10]])
            lines.append(line)
            total += len(line) + 2
            if draw[k + 10] < 31:  # about one line in eight ends a paragraph
                lines.append("")
                total += 2
            if total >= size:
                break
    return "\r\n".join(lines) + "\r\n"


def _qp(text: str) -> bytes:
    """UTF-8 text as quoted-printable with CRLF line ends (RFC 2045 §6.7)."""
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return encoded.replace(b"\n", b"\r\n")


def _text_part(text: str, subtype: str = "plain") -> bytes:
    head = (
        f"Content-Type: text/{subtype}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head.encode("ascii") + _qp(text)


def _html(text: str) -> str:
    paras = [p.replace("\r\n", " ") for p in text.split("\r\n\r\n") if p.strip()]
    body = "\r\n".join(f"<p>{p}</p>" for p in paras)
    return f"<html><body>\r\n{body}\r\n</body></html>\r\n"


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    out = bytearray(f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode())
    out += b"This is a multi-part message in MIME format.\r\n"
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part
        if not part.endswith(b"\r\n"):
            out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _attachment(rng: random.Random, size: int) -> bytes:
    raw = rng.randbytes(max(64, size * 3 // 4))
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    name = f"scan-{rng.randrange(10000):04d}.pdf"
    head = (
        f'Content-Type: application/pdf; name="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
    )
    return head.encode("ascii") + b64


class Corpus:
    """Messages by index, the same for the same seed on every machine and Python 3.11+."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed

    def _rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{index}")

    def size_of(self, index: int) -> int:
        """The target size of message ``index``: log-normal around 10 KB, 2 KB to 1 MB."""
        rng = self._rng(index)
        size = int(rng.lognormvariate(math.log(10 * 1024), 1.1))
        return min(MAX_SIZE, max(MIN_SIZE, size))

    def kind_of(self, index: int) -> Kind:
        rng = random.Random(f"{self.seed}:{index}:kind")
        if index == 0:  # a reply needs an earlier message
            return Kind.PLAIN
        kinds = [k for k, _ in _KIND_WEIGHTS]
        return rng.choices(kinds, [w for _, w in _KIND_WEIGHTS])[0]

    def get(self, index: int, *, size: int | None = None, to: str | None = None) -> Message:
        """Message ``index``, of its own size unless ``size`` is given, addressed to ``to``."""
        target = size if size is not None else self.size_of(index)
        kind = self.kind_of(index)
        rng = self._rng(index)
        rng.random()  # the draw size_of made, so sizes and contents stay independent
        sender = rng.choice(_NAMES)
        rcpt_name, rcpt_local = rng.choice(_NAMES)
        recipient = to if to is not None else f"{rcpt_local}@{DOMAIN}"
        subject = rng.choice(_SUBJECTS).replace("{n}", str(rng.randrange(1000)))
        headers = [
            ("From", _address(*sender)),
            ("To", f"{_encoded(rcpt_name)} <{recipient}>"),
            (
                "Date",
                (_BASE_DATE + timedelta(minutes=7 * index)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            ),
            ("Message-ID", message_id(self.seed, index)),
        ]
        if kind is Kind.REPLY:
            parent = rng.randrange(max(0, index - 50), index)
            refs = " ".join(message_id(self.seed, p) for p in range(max(0, parent - 3), parent + 1))
            subject = "Re: " + subject
            headers += [("In-Reply-To", message_id(self.seed, parent)), ("References", refs)]
        headers += [("Subject", _encoded(subject)), ("MIME-Version", "1.0")]
        head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
        # Two passes from the same state: the first measures how far the estimate fell.
        state = rng.getstate()
        room = max(0, target - len(head) - 200)
        body = self._body(rng, kind, room)
        rng.setstate(state)
        body = self._body(rng, kind, max(0, room + target - len(head) - len(body)))
        return Message(index, kind, head + body, subject, message_id(self.seed, index))

    def _body(self, rng: random.Random, kind: Kind, room: int) -> bytes:
        if kind is Kind.ALTERNATIVE:
            text = _paragraphs(rng, room * 2 // 5)
            parts = [_text_part(text), _text_part(_html(text), "html")]
            return _multipart("alternative", f"alt-{rng.randrange(1 << 32):08x}", parts)
        if kind is Kind.ATTACHMENT:
            text = _paragraphs(rng, min(room, 600))
            parts = [_text_part(text), _attachment(rng, max(0, room - len(text) - 250))]
            return _multipart("mixed", f"mix-{rng.randrange(1 << 32):08x}", parts)
        return _text_part(_paragraphs(rng, room * 9 // 10))

    def messages(self, count: int, *, start: int = 0) -> list[Message]:
        return [self.get(i) for i in range(start, start + count)]
