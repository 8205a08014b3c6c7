"""The events an ``SmtpConnection`` hands to the session: one per client command or unit of data.

Every event but ``NeedData`` and ``Closed`` waits for exactly one reply from the session
(``SmtpConnection.send``) before the next event comes out; that is what keeps pipelined replies
in order (RFC 2920 §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.wire.smtp.params import MailParams, RcptParams
from courriel.wire.smtp.paths import Path


@dataclass(frozen=True, slots=True)
class Ehlo:
    domain: str  # the first word of the argument, as sent
    valid: bool  # it is a Domain or address literal (RFC 5321 §4.1.1.1); policy decides


@dataclass(frozen=True, slots=True)
class Helo:
    domain: str
    valid: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    path: Path | None  # None: the null reverse-path <> (bounces, RFC 5321 §4.5.5)
    raw: str  # the whole argument after "MAIL FROM:", as sent
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptTo:
    path: Path
    raw: str  # the whole argument after "RCPT TO:", as sent
    params: RcptParams


@dataclass(frozen=True, slots=True)
class Data:
    """DATA with at least one accepted recipient. Reply 354 to read the message."""


@dataclass(frozen=True, slots=True)
class MessageData:
    """The message after ``<CRLF>.<CRLF>``: dot-unstuffed, CRLF line ends, terminator removed."""

    message: bytes
    long_lines: bool  # a line is longer than 998 characters (RFC 5322 §2.1.1); accepted anyway


@dataclass(frozen=True, slots=True)
class BdatChunk:
    """A BDAT chunk without LAST was read in full (RFC 3030 §2); reply 250 to go on."""

    size: int


@dataclass(frozen=True, slots=True)
class BdatLast:
    """BDAT ... LAST was read: ``message`` is every chunk of the transaction joined."""

    size: int  # octets in this last chunk
    message: bytes
    long_lines: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    argument: str


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    topic: str


@dataclass(frozen=True, slots=True)
class StartTls:
    """Reply 220 to start TLS, then check ``trailing_data`` before the handshake."""


@dataclass(frozen=True, slots=True)
class Auth:
    mechanism: str  # upper-cased, one of the offered mechanisms
    initial_response: bytes | None  # base64-decoded; b"" for "=", None when absent (RFC 4954 §4)


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A client line during a SASL exchange, base64-decoded."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedData:
    """Nothing complete is buffered: feed more bytes with ``receive_data``."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over (QUIT answered, a fatal error, or the peer went away)."""


@dataclass(frozen=True, slots=True)
class BurlUrl:
    """BURL url [LAST] (RFC 4468 §3): the session fetches the URL and hands the content to
    ``SmtpConnection.burl_data``, or answers with a refusal (554 5.6.6 when it cannot)."""

    url: str
    last: bool


Event = (
    Ehlo
    | Helo
    | MailFrom
    | RcptTo
    | Data
    | MessageData
    | BdatChunk
    | BdatLast
    | BurlUrl
    | Rset
    | Noop
    | Quit
    | Vrfy
    | Help
    | StartTls
    | Auth
    | AuthResponse
)
