"""ManageSieve responses (RFC 5804 §1.3, §4): OK / NO / BYE, strings, capability lines."""

from __future__ import annotations

import base64
from collections.abc import Sequence

# Response codes (RFC 5804 §1.3)
AUTH_TOO_WEAK = "AUTH-TOO-WEAK"
ENCRYPT_NEEDED = "ENCRYPT-NEEDED"
QUOTA = "QUOTA"
QUOTA_MAXSCRIPTS = "QUOTA/MAXSCRIPTS"
QUOTA_MAXSIZE = "QUOTA/MAXSIZE"
TRYLATER = "TRYLATER"
ACTIVE = "ACTIVE"
NONEXISTENT = "NONEXISTENT"
ALREADYEXISTS = "ALREADYEXISTS"
WARNINGS = "WARNINGS"

_QUOTED_MAX = 1024


def string(value: str | bytes) -> bytes:
    """A quoted string when it can be one, else a literal (RFC 5804 §4)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= _QUOTED_MAX and not any(b in data for b in b"\r\n\0"):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def _reply(word: bytes, text: str, code: str | bytes | None) -> bytes:
    out = word
    if code is not None:
        out += b" (" + (code.encode("ascii") if isinstance(code, str) else code) + b")"
    if text:
        out += b" " + string(text)
    return out + b"\r\n"


def ok(text: str = "", code: str | bytes | None = None) -> bytes:
    return _reply(b"OK", text, code)


def no(text: str = "", code: str | bytes | None = None) -> bytes:
    return _reply(b"NO", text, code)


def bye(text: str = "", code: str | bytes | None = None) -> bytes:
    return _reply(b"BYE", text, code)


def tag_code(tag: str) -> bytes:
    return b"TAG " + string(tag)  # RFC 5804 §2.13


def challenge(data: bytes) -> bytes:
    return string(base64.b64encode(data)) + b"\r\n"  # RFC 5804 §2.1


def capabilities(
    *,
    sieve_extensions: Sequence[str],
    sasl: Sequence[str],
    starttls: bool,
    max_redirects: int,
    owner: str | None,
) -> bytes:
    """The capability response (RFC 5804 §1.7), ending with OK."""
    lines = [
        b'"IMPLEMENTATION" "courriel"',
        b'"SIEVE" ' + string(" ".join(sieve_extensions)),
        b'"SASL" ' + string(" ".join(sasl)),
    ]
    if starttls:
        lines.append(b'"STARTTLS"')
    lines.append(b'"MAXREDIRECTS" ' + string(str(max_redirects)))
    if owner is not None:
        lines.append(b'"OWNER" ' + string(owner))
    lines.append(b'"UNAUTHENTICATE"')  # RFC 5804 §2.14.1
    lines.append(b'"VERSION" "1.0"')
    return b"\r\n".join(lines) + b"\r\n" + ok()


def script_list(entries: Sequence[tuple[str, bool]]) -> bytes:
    """LISTSCRIPTS lines (RFC 5804 §2.7) followed by OK."""
    out = b"".join(
        string(name) + (b" ACTIVE" if active else b"") + b"\r\n" for name, active in entries
    )
    return out + ok()


def script_body(content: bytes) -> bytes:
    """GETSCRIPT (RFC 5804 §2.9): the script as a literal, then OK."""
    return b"{%d}\r\n" % len(content) + content + b"\r\n" + ok()
