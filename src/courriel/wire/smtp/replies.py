"""SMTP replies: the ``Reply`` record, its wire form, and the replies courriel uses by name.

Theory of operation
-------------------
A reply is a basic code (RFC 5321 §4.2), an enhanced status code (RFC 2034, RFC 3463) and
one or more lines of text. ``Reply.encode`` produces the exact octets: every line but the last
joins code and text with "-", the last with a space (RFC 5321 §4.2.1), and the enhanced code is
repeated on every line (RFC 2034 §4). Greetings, EHLO/HELO answers and SASL challenges carry no
enhanced code (RFC 2034 §3), so ``enhanced`` is "" for them.

The constants below are the replies the core itself sends (syntax and sequencing errors,
limits) and the ordinary positive answers a session sends. Each sentence tells the person
reading a bounce what went wrong and what to do. A session's policy replies ("you may only send
as addresses you own") belong to the session; it builds them with ``Reply(...)``.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

_FORBIDDEN = frozenset("\r\n\x00")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str
    text: str
    more: tuple[str, ...] = ()  # further lines of a multi-line reply

    def __post_init__(self) -> None:
        # Replies are built by code, never from client input alone; a CR or LF inside one
        # would let a crafted value end the reply early and forge the next one.
        if not 200 <= self.code <= 599:
            raise ValueError(f"SMTP reply code out of range: {self.code}")
        for line in (self.enhanced, self.text, *self.more):
            if _FORBIDDEN.intersection(line):
                raise ValueError(f"SMTP reply text holds CR, LF or NUL: {line!r}")

    @property
    def positive(self) -> bool:
        """2xx and 3xx: the command was accepted (or the exchange goes on)."""
        return self.code < 400

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.text, *self.more)

    def encode(self) -> bytes:
        return _encode(self)


@functools.lru_cache(maxsize=512)
def _encode(reply: Reply) -> bytes:
    # Most replies are the constants below; caching their bytes saves formatting per command.
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    lines = reply.lines
    out = [f"{reply.code}-{prefix}{line}\r\n" for line in lines[:-1]]  # RFC 5321 §4.2.1
    out.append(f"{reply.code} {prefix}{lines[-1]}\r\n")
    return "".join(out).encode("utf-8")


def challenge(data: bytes) -> Reply:
    """A SASL challenge: 334 and the base64 of ``data`` (RFC 4954 §4)."""
    return Reply(334, "", base64.b64encode(data).decode("ascii"))


# --- positive replies a session sends -----------------------------------------------------

OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "recipient OK")
START_DATA = Reply(354, "", "send the message, end with <CR><LF>.<CR><LF>")
QUEUED = Reply(250, "2.0.0", "message accepted")
RESET_OK = Reply(250, "2.0.0", "reset")
NOOP_OK = Reply(250, "2.0.0", "OK")
BYE = Reply(221, "2.0.0", "bye")
# RFC 5321 §3.5.3: 252 says "cannot verify, but will try delivery"; VRFY answers nothing else,
# so it cannot be used to harvest addresses.
CANNOT_VRFY = Reply(252, "2.0.0", "cannot verify the address; send mail to it to find out")
HELP = Reply(
    214,
    "2.0.0",
    "commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
    ("see RFC 5321 for their use",),
)
READY_FOR_TLS = Reply(220, "2.0.0", "ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "authentication succeeded")

# --- negative replies a session commonly sends --------------------------------------------

AUTH_FAILED = Reply(535, "5.7.8", "authentication failed: check the user name and password")
AUTH_REQUIRED = Reply(530, "5.7.0", "authentication is required: log in before sending")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "no valid recipients: every RCPT TO was refused")
SHUTTING_DOWN = Reply(421, "4.3.2", "server is shutting down, try again later")
TEMP_FAILURE = Reply(451, "4.3.0", "temporary server failure, try again later")

# --- replies the core sends on its own ----------------------------------------------------

UNRECOGNIZED = Reply(500, "5.5.2", "command not recognized")  # RFC 5321 §4.2.4
LINE_TOO_LONG = Reply(500, "5.5.6", "line too long: commands are at most 1000 octets with CRLF")
BARE_NEWLINE_COMMAND = Reply(500, "5.5.2", "bare LF/CR is not allowed: end commands with CRLF")
BAD_CHARACTERS = Reply(500, "5.5.2", "command holds control characters or invalid UTF-8")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "command not implemented")
EXPN_DISABLED = Reply(502, "5.5.1", "EXPN is not available; send mail to the list instead")

SYNTAX_EHLO = Reply(501, "5.5.4", "Syntax: EHLO hostname")
SYNTAX_HELO = Reply(501, "5.5.4", "Syntax: HELO hostname")
SYNTAX_MAIL = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
SYNTAX_RCPT = Reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
SYNTAX_DATA = Reply(501, "5.5.4", "Syntax: DATA (no arguments)")
SYNTAX_BURL = Reply(501, "5.5.4", "syntax: BURL absolute-URI [LAST]")  # RFC 4468 §3
BURL_UNRESOLVED = Reply(554, "5.6.6", "the URL cannot be resolved: nothing of it was added")
SYNTAX_BDAT = Reply(
    501, "5.5.4", "Syntax: BDAT size [LAST]; closing since the data cannot be found"
)
SYNTAX_RSET = Reply(501, "5.5.4", "Syntax: RSET (no arguments)")
SYNTAX_QUIT = Reply(501, "5.5.4", "Syntax: QUIT (no arguments)")
SYNTAX_VRFY = Reply(501, "5.5.4", "Syntax: VRFY address")
SYNTAX_STARTTLS = Reply(501, "5.5.4", "Syntax: STARTTLS (no arguments)")
SYNTAX_AUTH = Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
BAD_ADDRESS = Reply(501, "5.1.3", "bad address syntax: use <local-part@domain>")
BAD_SENDER_ADDRESS = Reply(501, "5.1.7", "bad sender address syntax: use <local-part@domain>")
BAD_PARAMETER = Reply(501, "5.5.4", "invalid value for a MAIL/RCPT parameter")
DUPLICATE_PARAMETER = Reply(501, "5.5.4", "a MAIL/RCPT parameter was given twice")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "MAIL/RCPT parameter not recognized or not offered")
NEED_SMTPUTF8 = Reply(553, "5.6.7", "non-ASCII address: send MAIL FROM with SMTPUTF8")
BODY_NOT_OFFERED = Reply(555, "5.5.4", "BODY=BINARYMIME needs CHUNKING, which is not offered")

SEND_HELO_FIRST = Reply(503, "5.5.1", "send EHLO or HELO first")
SEND_EHLO_FIRST = Reply(503, "5.5.1", "send EHLO first: this is an ESMTP extension")
SEND_MAIL_FIRST = Reply(503, "5.5.1", "send MAIL FROM first")
SEND_RCPT_FIRST = Reply(503, "5.5.1", "send RCPT TO first")
NESTED_MAIL = Reply(503, "5.5.1", "a mail transaction is already open; send RSET to start over")
IN_TRANSACTION = Reply(503, "5.5.1", "not allowed during a mail transaction; send RSET first")
BDAT_IN_PROGRESS = Reply(503, "5.5.1", "finish the message with BDAT ... LAST, or send RSET")
DATA_WITH_BINARYMIME = Reply(503, "5.5.1", "BODY=BINARYMIME needs BDAT, not DATA")
DATA_AFTER_BDAT = Reply(503, "5.5.1", "DATA cannot follow BDAT in one transaction")
GREETING_REFUSED = Reply(503, "5.5.1", "service refused at connect; only QUIT is accepted")
ALREADY_TLS = Reply(503, "5.5.1", "TLS is already active")
TLS_NOT_OFFERED = Reply(502, "5.5.1", "STARTTLS is not offered here")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "already authenticated")  # RFC 4954 §4
AUTH_NOT_OFFERED = Reply(503, "5.5.1", "authentication is not offered here")
AUTH_NEEDS_TLS = Reply(530, "5.7.0", "send STARTTLS first: authentication needs TLS")
AUTH_MECHANISM_UNKNOWN = Reply(504, "5.5.4", "unrecognized authentication mechanism")
AUTH_CANCELLED = Reply(501, "5.0.0", "authentication cancelled")  # RFC 4954 §4
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "cannot decode the response: send base64")  # RFC 4954 §4
AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "authentication line too long")

TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "too many recipients: send the rest in another message")
BARE_NEWLINE_DATA = Reply(550, "5.6.11", "bare LF/CR is not allowed: end lines with CRLF")
LONG_LINE_DATA = Reply(550, "5.6.0", "message has a line longer than 998 characters")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "too many errors, closing the connection")
TLS_PIPELINED = Reply(421, "4.7.0", "data was sent after STARTTLS before TLS started; closing")


def chunk_too_big(limit: int) -> Reply:
    """552 5.3.4 for a BDAT chunk far over the limit: it is never read, so the connection
    closes (the next command could not be found)."""
    return Reply(552, "5.3.4", f"BDAT chunk far over the {limit} octet limit; closing")


def message_too_big(limit: int) -> Reply:
    """552 5.3.4 naming the limit (RFC 1870 §6)."""
    return Reply(552, "5.3.4", f"message too big: the limit is {limit} octets")
