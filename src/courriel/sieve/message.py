"""What a Sieve script sees of a message: header fields, addresses, body parts, size, envelope.

Theory of operation
-------------------
``MessageView`` reads the message lazily with the standard library's lenient parser (the
``compat32`` policy never raises on malformed input): header values unfolded and with RFC 2047
encoded words decoded (RFC 5228 §2.7.2 compares decoded text), addresses out of address
fields, and text parts for the body test (RFC 5173). The body test looks only at the first
``Limits.body_bytes`` of the message, so a run's cost does not grow with the message.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.parser
import email.utils
from dataclasses import dataclass, field
from datetime import datetime

_ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-reply-to",
        "return-path",
        "delivered-to",
        "disposition-notification-to",
    }
)


def is_address_field(name: str) -> bool:
    """RFC 5228 §5.1: the address test may name only fields that hold addresses."""
    return name.lower() in _ADDRESS_FIELDS


def decode_header_value(value: str) -> str:
    """Unfolded, with RFC 2047 encoded words decoded; undecodable words left as written."""
    text = value.replace("\r\n", "").replace("\n", "")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return text


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope of this delivery (RFC 5228 §5.4)."""

    sender: str  # "" for the null reverse-path
    recipient: str  # the address this copy was delivered to, as given in RCPT TO
    auth: str = ""  # the authenticated submitter, if any


@dataclass(slots=True)
class MessageView:
    raw: bytes
    envelope: Envelope
    body_limit: int = 1024 * 1024
    _msg: email.message.Message | None = field(default=None, repr=False)
    _fields: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.raw)

    def message(self) -> email.message.Message:
        if self._msg is None:
            self._msg = email.message_from_bytes(self.raw[: self.body_limit])
        return self._msg

    def fields(self) -> list[tuple[str, str]]:
        """Every top-level header field as (lower-case name, decoded value), in order."""
        if self._fields is None:
            end = self.raw.find(b"\r\n\r\n")
            head = self.raw if end < 0 else self.raw[: end + 2]
            msg = email.parser.BytesHeaderParser().parsebytes(head)
            self._fields = [
                (name.lower(), decode_header_value(str(value))) for name, value in msg.items()
            ]
        return self._fields

    def headers(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.fields() if key == wanted]

    def addresses(self, name: str) -> list[str]:
        """The addresses of the named fields; a group contributes its members (RFC 5228 §5.1)."""
        out: list[str] = []
        for value in self.headers(name):
            for display, addr in email.utils.getaddresses([value]):
                if addr or display:
                    out.append(addr)
        return out

    def date_of(self, name: str) -> list[datetime]:
        out: list[datetime] = []
        for value in self.headers(name):
            try:
                out.append(email.utils.parsedate_to_datetime(value))
            except (TypeError, ValueError, IndexError):
                continue  # RFC 5260 §4: a field that is no date does not match
        return out

    def raw_body(self) -> str:
        head_end = self.raw.find(b"\r\n\r\n")
        start = 0 if head_end < 0 else head_end + 4
        return self.raw[start : start + self.body_limit].decode("utf-8", "replace")

    def parts(self) -> list[tuple[str, str]]:
        """(content type, decoded text) of each leaf part, for the body test."""
        out: list[tuple[str, str]] = []
        for part in self.message().walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            charset = part.get_content_charset() or "us-ascii"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            out.append((ctype, text))
        return out
