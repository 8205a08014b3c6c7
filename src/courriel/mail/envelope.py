"""The IMAP ENVELOPE of a message header, pre-encoded once, when the message is parsed.

Theory of operation
-------------------
An ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) is ten fields: date, subject, from, sender,
reply-to, to, cc, bcc, in-reply-to and message-id. Strings are the header values as sent,
unfolded but not RFC 2047 decoded: decoding is the client's, as with every other server.
Address fields are lists of ``(name adl mailbox host)``; a group is opened by an address with
host NIL and the group name as mailbox and closed by one that is all NIL.

Header values are read as Latin-1 text, which maps every byte to one character, so the bytes
written back out are exactly the bytes received, 8-bit included. The address parser follows
RFC 5322 §3.4 but never gives up: what it cannot make sense of becomes an address whose
missing parts say so (``MISSING_MAILBOX`` / ``MISSING_DOMAIN``, the names Dovecot uses), since
host NIL would be read as the end of a group. A quoted local part keeps its quotes
(``"john doe"@example.com`` gives mailbox ``"john doe"``), so a client that joins mailbox and
host gets a usable address back; Dovecot strips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from courriel.mail import imapfmt

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"
# Address fields are read up to this many bytes: legitimate lists of thousands of recipients
# fit, while a hostile megabyte-long To: costs bounded time and envelope size.
MAX_ADDRESS_FIELD = 64 * 1024

ENVELOPE_FIELDS = frozenset(
    {
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    }
)


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address; a group start has only ``mailbox``, a group end nothing."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


_GROUP_END = Address(None, None, None, None)

# One lexical token of RFC 5322 §3.2: white space, quoted string, domain literal, special,
# or a run of atom text (lenient: anything else that is not a delimiter).
_LEX = re.compile(
    r"""(?P<ws>[ \t]+)
      | "(?P<qs>(?:[^"\\]++|\\.)*+)"?
      | (?P<dl>\[(?:[^\]\\]++|\\.)*+\]?)
      | (?P<sp>[<>@,;:.])
      | (?P<open>\()
      | (?P<atom>(?:[^ \t"()\[\]<>@,;:.\\]|\\.?)+)
      | (?P<junk>[)\]])""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_WSP_RUN = re.compile(r"[ \t]+")
# The forms nearly all mail uses -- ``a@b``, ``Name <a@b>``, ``"Name" <a@b>`` separated by
# commas -- read in one match each; anything else takes the full tokenizer. 8-bit bytes
# (RFC 6532 UTF-8, read as Latin-1) count as atom text in both.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\x80-\xff]++"
_DOT_ATOM = _ATEXT + r"(?:\." + _ATEXT + r")*+"
# Possessive quantifiers throughout: the name may hold white space, and without them a long
# run of spaces that ends in something unexpected backtracks in cubic time.
_SIMPLE = re.compile(
    r"[ \t]*+(?:"
    r'(?:(?P<name>[A-Za-z0-9!#$%&\'*+/=?^_`{|}~\-\x80-\xff \t]*+)|"(?P<qname>[^"\\]*+)"[ \t]*+)'
    r"<(?P<local>" + _DOT_ATOM + r")@(?P<domain>" + _DOT_ATOM + r")>"
    r"|(?P<spec_local>" + _DOT_ATOM + r")@(?P<spec_domain>" + _DOT_ATOM + r"))"
    r"[ \t]*+(?:,|\Z)"
)
_COMMENT_CHUNK = re.compile(r"[^()\\]+|\\.?|[()]", re.DOTALL)


class _Token(NamedTuple):
    """A lexical token; a tuple because the slow path makes one per word."""

    kind: str  # "ws", "qs", "dl", "sp", "comment", "atom"
    text: str


def _tokens(value: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    n = len(value)
    while pos < n:
        m = _LEX.match(value, pos)
        if m is None:  # unreachable: every character starts some alternative
            break
        kind = m.lastgroup or "junk"
        if kind == "open":
            text, pos = _comment(value, m.end())
            out.append(_Token("comment", text))
            continue
        if kind == "qs":
            out.append(_Token("qs", _QUOTED_PAIR.sub(r"\1", m.group("qs"))))
        elif kind != "junk":
            out.append(_Token(kind, m.group(0)))
        pos = m.end()
    return out


def _comment(value: str, pos: int) -> tuple[str, int]:
    """A (possibly nested) comment starting after its '(' : its text and the end offset."""
    depth = 1
    parts: list[str] = []
    for m in _COMMENT_CHUNK.finditer(value, pos):
        chunk = m.group(0)
        if chunk == "(":
            depth += 1
        elif chunk == ")":
            depth -= 1
            if depth == 0:
                return "".join(parts), m.end()
        parts.append(chunk[1:] if chunk[:1] == "\\" else chunk)
    return "".join(parts), len(value)


def _phrase(tokens: list[_Token]) -> str | None:
    """A display name: words and dots, quoted strings unquoted, runs of white space as one."""
    out: list[str] = []
    for tok in tokens:
        if tok.kind == "comment":
            continue
        if tok.kind == "ws":
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(tok.text)
    text = "".join(out).strip(" ")
    return text or None


def _addr_spec(tokens: list[_Token]) -> tuple[str | None, str | None]:
    """``(local part, domain)`` of an addr-spec; quoted local parts keep their quotes."""
    words = [t for t in tokens if t.kind not in ("ws", "comment")]
    at = next((i for i, t in enumerate(words) if t.kind == "sp" and t.text == "@"), -1)
    local_toks = words if at < 0 else words[:at]
    local = "".join(_local_word(t) for t in local_toks) or None
    domain = None if at < 0 else ("".join(t.text for t in words[at + 1 :]) or None)
    return local, domain


def _local_word(tok: _Token) -> str:
    if tok.kind == "qs":
        return '"' + tok.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return tok.text


def _last_comment(tokens: list[_Token]) -> str | None:
    for tok in reversed(tokens):
        if tok.kind == "comment" and tok.text.strip():
            return _WSP_RUN.sub(" ", tok.text).strip(" ")
    return None


def _mailbox(name: str | None, route: str | None, local: str | None, domain: str | None) -> Address:
    return Address(name, route, local or MISSING_MAILBOX, domain or MISSING_DOMAIN)


def _angle(tokens: list[_Token], start: int) -> tuple[str | None, str | None, str | None, int]:
    """Parse ``<[route:]addr-spec>`` from after '<': route, local part, domain, next index."""
    end = start
    while end < len(tokens) and not (tokens[end].kind == "sp" and tokens[end].text == ">"):
        end += 1
    inner = [t for t in tokens[start:end] if t.kind not in ("ws", "comment")]
    route = None
    if inner and inner[0].kind == "sp" and inner[0].text == "@":  # RFC 5322 §4.4 obs-route
        colon = next((i for i, t in enumerate(inner) if t.kind == "sp" and t.text == ":"), -1)
        if colon >= 0:
            route = "".join(t.text for t in inner[:colon]) or None
            inner = inner[colon + 1 :]
    local, domain = _addr_spec(inner)
    return route, local, domain, end + 1


def _simple_prefix(text: str) -> tuple[list[Address], int]:
    """The leading elements that have one of the simple forms, and where they end."""
    out: list[Address] = []
    pos = 0
    while pos < len(text):
        m = _SIMPLE.match(text, pos)
        if m is None:
            break
        if m.group("spec_local") is not None:
            out.append(Address(None, None, m.group("spec_local"), m.group("spec_domain")))
        else:
            name = m.group("qname")
            if name is None:
                name = _WSP_RUN.sub(" ", m.group("name"))
            out.append(Address(name.strip(" ") or None, None, m.group("local"), m.group("domain")))
        pos = m.end()
    return out, pos


def parse_addresses(value: bytes) -> list[Address]:
    """The ENVELOPE address list of a From/To/Cc/... value (RFC 5322 §3.4), never raising.

    Simple elements at the front are read by one regex each; from the first element that is
    not simple (a group, a comment, a dotted name ...) the tokenizer takes over.
    """
    text = value[:MAX_ADDRESS_FIELD].decode("latin-1")
    out, pos = _simple_prefix(text)
    if pos < len(text):
        out.extend(_parse_tokens(_tokens(text[pos:])))
    return out


def _parse_tokens(tokens: list[_Token]) -> list[Address]:
    out: list[Address] = []
    in_group = False
    i = 0
    n = len(tokens)
    while i < n:
        j = i
        while j < n and not (tokens[j].kind == "sp" and tokens[j].text in ",;:<"):
            j += 1
        head = tokens[i:j]
        stop = tokens[j].text if j < n else ""
        if stop == ":" and not in_group and not any(t.kind == "sp" and t.text == "@" for t in head):
            out.append(Address(None, None, _phrase(head) or "", None))  # RFC 5322 §3.4 group
            in_group = True
            i = j + 1
            continue
        if stop == "<":
            route, local, domain, k = _angle(tokens, j + 1)
            while k < n and not (tokens[k].kind == "sp" and tokens[k].text in ",;"):
                k += 1
            name = _phrase(head) or _last_comment(tokens[j:k])
            out.append(_mailbox(name, route, local, domain))
            j = k
            stop = tokens[j].text if j < n else ""
        elif any(t.kind not in ("ws", "comment") for t in head):
            local, domain = _addr_spec(head)
            out.append(_mailbox(_last_comment(head), None, local, domain))
        if stop == ";" and in_group:
            out.append(_GROUP_END)
            in_group = False
        i = j + 1
    if in_group:
        out.append(_GROUP_END)
    return out


def _enc(value: str | None) -> bytes:
    if value is None:
        return imapfmt.NIL
    data = value.encode("latin-1")
    if b"\x00" in data:
        data = imapfmt.without_nul(data)
    return imapfmt.string(data)


def encode_addresses(addresses: list[Address]) -> bytes:
    """``((name adl mailbox host)...)`` or NIL for an empty list (RFC 9051 §7.5.2).

    Addresses follow each other with no space between them: ``"(" 1*address ")"``
    (RFC 9051 §9 env-from).
    """
    if not addresses:
        return imapfmt.NIL
    return (
        b"(("
        + b")(".join(
            b"%s %s %s %s" % (_enc(a.name), _enc(a.adl), _enc(a.mailbox), _enc(a.host))
            for a in addresses
        )
        + b"))"
    )


def encode_envelope(fields: dict[bytes, bytes]) -> bytes:
    """The parenthesised ENVELOPE from the first value of each envelope field.

    ``fields`` maps lower-case field names to unfolded raw values (``mime.first_fields``).
    Sender and Reply-To default to From when absent, empty or holding no address
    (RFC 3501 §7.4.2).
    """

    def text(name: bytes) -> bytes:
        value = fields.get(name)
        return imapfmt.NIL if value is None else imapfmt.string(imapfmt.without_nul(value))

    def addresses(name: bytes) -> list[Address]:
        value = fields.get(name)
        return [] if value is None else parse_addresses(value)

    from_ = encode_addresses(addresses(b"from"))
    sender = addresses(b"sender")
    reply_to = addresses(b"reply-to")
    return b"(%s %s %s %s %s %s %s %s %s %s)" % (
        text(b"date"),
        text(b"subject"),
        from_,
        encode_addresses(sender) if sender else from_,  # RFC 3501 §7.4.2 default
        encode_addresses(reply_to) if reply_to else from_,
        encode_addresses(addresses(b"to")),
        encode_addresses(addresses(b"cc")),
        encode_addresses(addresses(b"bcc")),
        text(b"in-reply-to"),
        text(b"message-id"),
    )


EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def parse_date(value: bytes | None) -> datetime | None:
    """The Date field as an aware datetime (RFC 5322 §3.3), or None when it does not parse.

    A zone of ``-0000`` ("no information", RFC 5322 §3.3) is taken as UTC.
    """
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
