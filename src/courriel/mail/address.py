"""Mailbox addresses as SMTP and the command line receive them: parsing, checking, normalising.

Theory of operation
-------------------
``parse_address`` reads one RFC 5321 §4.1.2 ``Mailbox`` (``Local-part "@" Domain``, no angle
brackets, no source route) and returns an ``Address`` whose parts are in their stored form:

* the local part is *decoded* (a quoted string loses its quotes and backslashes) and otherwise
  kept exactly as written, case included; ``str(address)`` quotes it again only when it is not a
  dot-atom, so ``"joe"@example.org`` and ``joe@example.org`` become the same string;
* the domain is lower-case A-label (punycode) form, or an address literal in canonical form
  (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``).

Why the local part keeps its case: RFC 5321 §2.4 says local parts are case-sensitive, and a
remote server may really treat ``Joe`` and ``joe`` as two people, so an address we relay must
leave here as it was given. For our own users the same section discourages exploiting case, and
people type capitals at random, so the store matches local parts case-insensitively (as Postfix,
Dovecot, Exchange and Gmail do). Normalising keeps the written form; comparing is the store's job.

Trailing dot: ``normalize_domain`` accepts one trailing dot (``example.org.``, the fully
qualified form a zone file or an administrator may write) and drops it, since it names the same
domain; an empty label anywhere else (``a..b``, ``.a``, ``a..``) is refused.

Internationalised addresses (RFC 6531): local parts may hold UTF-8 beyond ASCII and domains may
be U-labels; U-labels go through UTS 46 mapping (``idna`` package, non-transitional) to the
A-label form. A caller whose client did not ask for SMTPUTF8 passes ``allow_utf8=False``.

Relay hacks (source routes ``@a,@b:user@c``, ``user%other@ours``, ``host!user@ours``,
``"user@other"@ours``) are matters of SMTP policy, but ``plain_mailbox`` / ``is_plain_mailbox``
refuse them here so every entry point uses the same rule.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS = 255  # RFC 5321 §4.5.3.1.2
MAX_PATH_OCTETS = 256  # RFC 5321 §4.5.3.1.3, counting the angle brackets
MAX_LABEL_OCTETS = 63  # RFC 1035 §2.3.4
PLUS_SEPARATOR = "+"

# Anything longer cannot be valid; refusing it first keeps IDNA work bounded.
_MAX_INPUT_CHARS = 4 * MAX_PATH_OCTETS

# RFC 5322 §3.2.3 atext; RFC 6531 §3.3 adds every non-ASCII character (checked separately).
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
# RFC 5321 §4.1.2 Let-dig [Ldh-str]: letters, digits, inner hyphens.
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
# Characters that route mail onwards when they appear in a local part we would relay.
_ROUTING_CHARS = frozenset("@%!")


class AddressError(ValueError):
    """The text is not a usable mailbox address; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Address:
    local: str  # decoded local part, case as written
    domain: str  # lower-case A-label, or a canonical address literal

    def __str__(self) -> str:
        return f"{_quote_local(self.local)}@{self.domain}"

    @property
    def is_literal(self) -> bool:
        return self.domain.startswith("[")

    @property
    def domain_unicode(self) -> str:
        """The domain with A-labels shown as U-labels, for people to read."""
        if self.is_literal:
            return self.domain
        try:
            return idna.decode(self.domain)
        except idna.IDNAError:
            return self.domain

    @property
    def is_ascii(self) -> bool:
        return self.local.isascii()


# --- local part ---------------------------------------------------------------------------------


def _is_non_ascii_ok(ch: str) -> bool:
    cp = ord(ch)
    # RFC 6531 §3.3 UTF8-non-ascii; C1 controls and lone surrogates are never text.
    return cp >= 0xA0 and not 0xD800 <= cp <= 0xDFFF


def _is_atext(ch: str) -> bool:
    return ch in _ATEXT or (not ch.isascii() and _is_non_ascii_ok(ch))


def _is_dot_atom(s: str) -> bool:
    """RFC 5321 §4.1.2 Dot-string: atoms of atext joined by single dots."""
    if not s:
        return False
    return all(atom and all(_is_atext(ch) for ch in atom) for atom in s.split("."))


def _quote_local(local: str) -> str:
    if _is_dot_atom(local):
        return local
    # RFC 5321 §4.1.2 quoted-pairSMTP: only '"' and '\' need the backslash.
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_quoted(s: str) -> tuple[str, int]:
    """Reads a quoted-string at the start of ``s``; returns (decoded text, index after it)."""
    out: list[str] = []
    i = 1
    while i < len(s):
        ch = s[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            # RFC 5321 §4.1.2 quoted-pairSMTP = %d92 %d32-126
            if i + 1 >= len(s) or not 32 <= ord(s[i + 1]) <= 126:
                raise AddressError(
                    "a backslash in a quoted local part must be followed by a printable "
                    "ASCII character"
                )
            out.append(s[i + 1])
            i += 2
            continue
        # RFC 5321 §4.1.2 qtextSMTP = %d32-33 / %d35-91 / %d93-126, RFC 6531 §3.3 adds UTF-8
        if not (32 <= ord(ch) <= 126 or (not ch.isascii() and _is_non_ascii_ok(ch))):
            raise AddressError(
                f"the quoted local part holds a control character (U+{ord(ch):04X}); remove it"
            )
        out.append(ch)
        i += 1
    raise AddressError('the quoted local part has no closing double quote (")')


def _split_mailbox(s: str) -> tuple[str, str]:
    """Splits ``local@domain`` into the decoded local part and the raw domain text."""
    if s.startswith('"'):
        local, end = _read_quoted(s)
        if end >= len(s) or s[end] != "@":
            raise AddressError('a quoted local part must be followed directly by "@" and a domain')
        return local, s[end + 1 :]
    at = s.rfind("@")
    if at < 0:
        raise AddressError(f"{s!r} has no '@': write the address as name@example.org")
    local, domain = s[:at], s[at + 1 :]
    if not local:
        raise AddressError("the part before '@' is empty: write the address as name@example.org")
    if "@" in local:
        raise AddressError(
            "the address holds more than one '@'; quote the local part if the first one is "
            "really part of the name"
        )
    if not _is_dot_atom(local):
        raise AddressError(_why_not_dot_atom(local))
    return local, domain


def _why_not_dot_atom(local: str) -> str:
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return (
            f"the local part {local!r} starts or ends with a dot or has two dots in a row; "
            "that is only allowed inside double quotes"
        )
    bad = next(ch for ch in local if ch != "." and not _is_atext(ch))
    return f"the local part {local!r} contains {bad!r}, which is only allowed inside double quotes"


# --- domain -------------------------------------------------------------------------------------


def _normalize_literal(text: str) -> str:
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        if "%" in inner:
            # A zone index ("fe80::1%eth0") means nothing outside one host.
            raise AddressError(f"{text!r}: an IPv6 address literal cannot carry a zone index")
        try:
            v6 = ipaddress.IPv6Address(inner[5:])  # RFC 5321 §4.1.3 IPv6-address-literal
        except ValueError:
            raise AddressError(f"{text!r} is not a valid IPv6 address literal") from None
        return f"[IPv6:{v6.compressed}]"
    if ":" in inner:
        # RFC 5321 §4.1.3 General-address-literal: no tag other than IPv6 is registered.
        raise AddressError(
            f"{text!r} is not an address literal we know: use [192.0.2.1] or [IPv6:2001:db8::1]"
        )
    try:
        v4 = ipaddress.IPv4Address(inner)  # RFC 5321 §4.1.3 IPv4-address-literal
    except ValueError:
        raise AddressError(f"{text!r} is not a valid IPv4 address literal") from None
    return f"[{v4}]"


def _normalize_label(label: str, whole: str) -> str:
    if not label:
        raise AddressError(f"the domain {whole!r} has an empty label (two dots in a row?)")
    if label.isascii():
        # Plain LDH labels pass unchanged: IDNA 2008's extra rules (no "--" in positions 3-4)
        # apply to U-labels only, and such names exist in DNS today.
        if not _LDH_LABEL.match(label):
            raise AddressError(
                f"the domain label {label!r} may hold only letters, digits and inner hyphens"
            )
        out = label.lower()
        if out.startswith("xn--"):
            try:
                idna.decode(out)
            except (idna.IDNAError, UnicodeError):
                raise AddressError(f"the domain label {label!r} is not a valid A-label") from None
    else:
        try:
            out = idna.alabel(label).decode("ascii")
        except (idna.IDNAError, UnicodeError) as e:
            raise AddressError(
                f"the domain label {label!r} is not a valid internationalised name ({e})"
            ) from None
    if len(out) > MAX_LABEL_OCTETS:
        raise AddressError(
            f"the domain label {label!r} is longer than {MAX_LABEL_OCTETS} characters"
        )
    return out


def normalize_domain(s: str) -> str:
    """Lower-case A-label form of a domain name or address literal; raises ``AddressError``."""
    if not s:
        raise AddressError("the domain is empty: write it as example.org")
    if len(s) > _MAX_INPUT_CHARS:
        raise AddressError(f"the domain is longer than {MAX_DOMAIN_OCTETS} characters")
    if s.startswith("[") and s.endswith("]"):
        return _normalize_literal(s)
    if not s.isascii():
        try:
            # UTS 46 mapping: case folding, full-width forms and the ideographic full stop.
            s = idna.uts46_remap(s, std3_rules=True, transitional=False)
        except (idna.IDNAError, UnicodeError) as e:
            raise AddressError(
                f"the domain {s!r} is not a valid internationalised name ({e})"
            ) from None
    if s.endswith("."):
        s = s[:-1]  # the fully qualified spelling names the same domain
    labels = [_normalize_label(label, s) for label in s.split(".")]
    if labels[-1].isdigit():
        # RFC 3696 §2: no top-level domain is all digits; this is an address in the wrong form.
        raise AddressError(
            f"{s!r} looks like an IP address; write an address literal such as [192.0.2.1]"
        )
    out = ".".join(labels)
    if len(out) > MAX_DOMAIN_OCTETS:  # RFC 5321 §4.5.3.1.2
        raise AddressError(f"the domain is longer than {MAX_DOMAIN_OCTETS} characters")
    return out


# --- addresses ----------------------------------------------------------------------------------


def parse_address(s: str, *, allow_utf8: bool = True) -> Address:
    """Parses one bare mailbox (``local@domain``, no angle brackets); raises ``AddressError``."""
    if len(s) > _MAX_INPUT_CHARS:
        raise AddressError(f"the address is longer than {MAX_PATH_OCTETS - 2} characters")
    if not s:
        raise AddressError("the address is empty: write it as name@example.org")
    if s.startswith("@"):
        # RFC 5321 §4.1.1.3: source routes are obsolete; the SMTP layer strips or refuses them.
        raise AddressError("source routes (@host,@host:user@domain) are not accepted here")
    if not allow_utf8 and not s.isascii():
        # RFC 6531 §3.2: non-ASCII addresses need the SMTPUTF8 extension.
        raise AddressError("this address has non-ASCII characters; the client must use SMTPUTF8")
    local, domain_text = _split_mailbox(s)
    if not domain_text:
        raise AddressError("the part after '@' is empty: write the address as name@example.org")
    address = Address(local, normalize_domain(domain_text))
    _check_lengths(address)
    return address


def _check_lengths(address: Address) -> None:
    local_octets = len(_quote_local(address.local).encode("utf-8"))
    if local_octets > MAX_LOCAL_OCTETS:  # RFC 5321 §4.5.3.1.1
        raise AddressError(
            f"the part before '@' is {local_octets} bytes long; at most {MAX_LOCAL_OCTETS}"
        )
    path_octets = len(str(address).encode("utf-8")) + 2
    if path_octets > MAX_PATH_OCTETS:  # RFC 5321 §4.5.3.1.3
        raise AddressError(f"the address is longer than {MAX_PATH_OCTETS - 2} bytes")


def normalize_address(s: str) -> str:
    """The stored form of an address: domain normalised, local part as written (unquoted)."""
    return str(parse_address(s))


def split_plus(local: str) -> tuple[str, str | None]:
    """``("user", "tag")`` for ``user+tag``; ``(local, None)`` when it is no plus-address.

    The split is at the first separator (Postfix's ``recipient_delimiter`` does the same), so
    ``a+b+c`` is user ``a`` with tag ``b+c``. A local part that starts with the separator has no
    base and is not a plus-address; ``user+`` is base ``user`` with an empty tag.
    """
    base, sep, tag = local.partition(PLUS_SEPARATOR)
    if not sep or not base:
        return local, None
    return base, tag


def plain_mailbox(s: str, *, allow_utf8: bool = True) -> Address:
    """Like ``parse_address``, but also refuses local parts that route mail elsewhere.

    ``user%other@ours``, ``host!user@ours`` and ``"user@other"@ours`` ask the receiving server
    to pass the mail on; accepting them turns a server into an open relay (RFC 5321 §3.6.1,
    RFC 2505 §2.6), so a local part holding "@", "%" or "!" is refused.
    """
    address = parse_address(s, allow_utf8=allow_utf8)
    found = sorted(_ROUTING_CHARS.intersection(address.local))
    if found:
        raise AddressError(
            f"the local part {address.local!r} contains {', '.join(map(repr, found))}, which "
            "would route mail through this server; such addresses are refused"
        )
    return address


def is_plain_mailbox(s: str, *, allow_utf8: bool = True) -> bool:
    """True when ``s`` is a valid mailbox with no source route or routing local part."""
    try:
        plain_mailbox(s, allow_utf8=allow_utf8)
    except AddressError:
        return False
    return True
