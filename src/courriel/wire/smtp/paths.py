"""Reverse-path and forward-path syntax (RFC 5321 §4.1.2, RFC 6531 §3.3).

Theory of operation
-------------------
``parse_path`` takes the text of a MAIL FROM or RCPT TO argument from "<" to ">" and returns a
``Path``: the route, the local part (quotes removed), the domain or address literal, and the
text as sent. It checks syntax only; whether an address is local, allowed, or plausible is the
session's question (``courriel.mail.address``).

Decisions, with what the big servers do:

* Source routes (``<@a,@b:user@c>``) are parsed and stripped: ``Path.route`` keeps them for the
  log and ``mailbox`` is ``user@c``. RFC 5321 §4.1.1.3 says servers SHOULD ignore routes;
  Postfix strips them, Exim ignores them. Refusing would bounce mail from old gateways for no
  gain, and stripping never relays along the route.
* ``user@a@b`` is a syntax error: "@" cannot appear unquoted in a local part. ``"user@a"@b``
  and ``user%a@b`` are valid syntax and come through unchanged; the session refuses them at the
  MX if it wants to (Postfix's ``allow_untrusted_routing = no`` does).
* The lengths of RFC 5321 §4.5.3.1 are sizes every server MUST accept, not maxima, so a long
  local part is accepted (the 1000-octet command line bounds it). Domains are held to what DNS
  can carry: 255 octets, labels of 63 (RFC 1035 §2.3.4).
* Non-ASCII (RFC 6531 UTF-8 local parts and U-label domains) is parsed here, and the core
  refuses it unless MAIL FROM carried SMTPUTF8.
* Addresses must be in angle brackets. Postfix accepts a bare address unless
  ``strict_rfc821_envelopes``; every mail program in use sends the brackets, and the grammar
  needs them to tell the address from the parameters that follow.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass


class PathError(ValueError):
    """The path is not valid syntax; ``needs_utf8`` when only SMTPUTF8 was missing."""

    def __init__(self, reason: str, *, needs_utf8: bool = False) -> None:
        super().__init__(reason)
        self.needs_utf8 = needs_utf8


@dataclass(frozen=True, slots=True)
class Path:
    raw: str  # everything between "<" and ">" as sent, route included
    mailbox: str  # the mailbox as sent, without the route
    local_part: str  # quotes and quoted-pair backslashes removed
    domain: str  # as sent: a domain, "[address literal]", or "" for <Postmaster>
    route: tuple[str, ...] = ()  # source-route domains that were stripped (RFC 5321 §4.1.1.3)
    quoted: bool = False  # the local part was a quoted-string

    @property
    def address(self) -> str:
        """``local@domain`` with the local part unquoted (``Postmaster`` alone for §4.1.1.3)."""
        return f"{self.local_part}@{self.domain}" if self.domain else self.local_part

    @property
    def is_literal(self) -> bool:
        return self.domain.startswith("[")

    @property
    def is_ascii(self) -> bool:
        return self.raw.isascii()


_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8 = r"\u0080-\U0010ffff"
_DOT_STRING = re.compile(rf"[{_ATEXT}{_UTF8}]+(?:\.[{_ATEXT}{_UTF8}]+)*")
# RFC 5321 §4.1.2 qtextSMTP and quoted-pairSMTP, widened with UTF-8 by RFC 6531 §3.3.
_QUOTED = re.compile(rf'"((?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*)"')
_QUOTED_PAIR = re.compile(r"\\([\x20-\x7e])")
_LABEL = re.compile(rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9\-{_UTF8}]*[A-Za-z0-9{_UTF8}])?")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?:[\x21-\x5a\x5e-\x7e]+")
_ROUTE = re.compile(r"(@[^,:@]+(?:,@[^,:@]+)*):")
_MAX_DOMAIN = 255  # RFC 1035 §2.3.4
_MAX_LABEL = 63


def is_domain(text: str) -> bool:
    """RFC 5321 §4.1.2 Domain, with U-labels allowed (RFC 6531 §3.3)."""
    if not text or len(text.encode("utf-8")) > _MAX_DOMAIN:
        return False
    for label in text.split("."):
        if not _LABEL.fullmatch(label) or len(label.encode("utf-8")) > _MAX_LABEL:
            return False
    return True


def is_address_literal(text: str) -> bool:
    """RFC 5321 §4.1.3: ``[IPv4]``, ``[IPv6:...]`` or ``[tag:content]``."""
    if len(text) < 3 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    if inner[:5].upper() == "IPV6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    if inner[:1].isdigit() and "." in inner:
        try:
            ipaddress.IPv4Address(inner)
        except ValueError:
            return False
        return True
    return _GENERAL_LITERAL.fullmatch(inner) is not None


def _local_part(text: str) -> tuple[str, bool]:
    if _DOT_STRING.fullmatch(text):
        return text, False
    m = _QUOTED.fullmatch(text)
    if m is None:
        raise PathError("bad local part")
    return _QUOTED_PAIR.sub(r"\1", m.group(1)), True


def _split_mailbox(text: str) -> tuple[str, str]:
    """Splits at the "@" that ends the local part (a quoted local part may hold "@")."""
    if text.startswith('"'):
        m = _QUOTED.match(text)
        if m is None:
            raise PathError("unterminated quoted local part")
        end = m.end()
        if text[end : end + 1] != "@":
            raise PathError("missing @domain")
        return text[:end], text[end + 1 :]
    at = text.find("@")
    if at < 0:
        raise PathError("missing @domain")
    return text[:at], text[at + 1 :]


def _route(text: str) -> tuple[tuple[str, ...], str]:
    m = _ROUTE.match(text)
    if m is None:
        if text.startswith("@"):
            raise PathError("bad source route")
        return (), text
    hops = tuple(hop[1:] for hop in m.group(1).split(","))
    for hop in hops:
        if not (is_domain(hop) or is_address_literal(hop)):
            raise PathError("bad domain in source route")
    return hops, text[m.end() :]


def parse_path(text: str, *, utf8: bool, postmaster: bool = False) -> Path:
    """Parses ``<...>`` (brackets included) into a ``Path``; raises ``PathError``.

    ``utf8``: SMTPUTF8 is in effect, so non-ASCII is allowed (RFC 6531 §3.4).
    ``postmaster``: accept ``<Postmaster>`` without a domain (RFC 5321 §4.1.1.3, RCPT only).
    The null reverse-path ``<>`` is the caller's to recognise before calling this.
    """
    if len(text) < 3 or text[0] != "<" or text[-1] != ">":
        raise PathError("address must be in angle brackets")
    raw = text[1:-1]
    if not raw.isascii() and not utf8:
        raise PathError("non-ASCII address without SMTPUTF8", needs_utf8=True)  # RFC 6531 §3.4
    if postmaster and raw.lower() == "postmaster":
        return Path(raw=raw, mailbox=raw, local_part=raw, domain="")  # RFC 5321 §4.1.1.3
    route, mailbox = _route(raw)
    local_text, domain = _split_mailbox(mailbox)
    local, quoted = _local_part(local_text)
    if not (is_domain(domain) or is_address_literal(domain)):
        raise PathError("bad domain")
    return Path(
        raw=raw, mailbox=mailbox, local_part=local, domain=domain, route=route, quoted=quoted
    )
