"""Parser for APPEND, with MULTIAPPEND (RFC 3502), literal8 (RFC 3516) and UTF8 (RFC 6855),
CATENATE (RFC 4469), and for REPLACE (RFC 8508), whose message is written as APPEND's.

Theory of operation
-------------------
``APPEND mailbox 1*([SP flag-list] [SP date-time] SP data)``: after the mailbox name each
message is optional flags, an optional quoted date-time and the data, which is a literal, a
literal8 (``~{n}``) or ``UTF8 (literal8)``. The literal bytes come from the connection as read
in bulk; they are handed on without a copy.
"""

from __future__ import annotations

from datetime import datetime

from courriel.wire.imap.commands import Append, AppendMessage, Replace
from courriel.wire.imap.dates import parse_date_time
from courriel.wire.imap.lexer import Reader

MAX_PARTS = 100  # parts of one CATENATE: each URL costs a message read


def _date_time(r: Reader) -> datetime:
    raw = r.string("date-time")
    when = parse_date_time(raw)
    if when is None:
        r.fail('Invalid date-time, expected "dd-Mon-yyyy hh:mm:ss +zzzz"')
    return when


def _catenate(r: Reader) -> tuple[bytes | str, ...]:
    """RFC 4469 §5: ``(cat-part *(SP cat-part))``, each ``TEXT literal`` or ``URL url``."""
    r.sp("'(' after CATENATE")
    r.open_paren("'(' after CATENATE")
    parts: list[bytes | str] = []
    while True:
        kind = r.keyword("TEXT or URL")
        r.sp(f"value after {kind}")
        if kind == "TEXT":
            parts.append(r.literal("TEXT literal", allow_binary=True)[0])
        elif kind == "URL":
            parts.append(r.astring_text("URL"))
        else:
            r.fail(f"Expected TEXT or URL, not {kind}")
        if len(parts) > MAX_PARTS:
            r.fail(f"Too many CATENATE parts (limit {MAX_PARTS})")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end the CATENATE parts")
    return tuple(parts)


def _message(r: Reader) -> AppendMessage:
    flags: frozenset[str] = frozenset()
    when: datetime | None = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        r.sp("date-time or message literal after the flag list")
    if r.peek() == 0x22:
        when = _date_time(r)
        r.sp("message literal after the date-time")
    if r.literal_ahead():
        data, binary = r.literal("message literal", allow_binary=True)
        return AppendMessage(flags, when, data, binary=binary)
    word = r.keyword("message literal")
    if word == "CATENATE":
        return AppendMessage(flags, when, b"", catenate=_catenate(r))
    if word != "UTF8":
        r.fail("Expected message literal")
    r.sp("'(' after UTF8")
    r.open_paren("'(' after UTF8")
    data, binary = r.literal("message literal8", allow_binary=True)  # RFC 6855 §4
    r.close_paren("')' after the UTF8 literal")
    return AppendMessage(flags, when, data, utf8=True, binary=binary)


def parse_append(r: Reader, uid: bool) -> Append:
    r.sp("mailbox name after APPEND")
    mailbox = r.mailbox()
    r.sp("message after the mailbox name")
    messages = [_message(r)]
    while r.maybe_sp():  # RFC 3502 §6.3.11: MULTIAPPEND
        # imapclient's multiappend writes two spaces between messages; one more is read
        # rather than refusing a command whose meaning is plain.
        r.maybe_sp()
        messages.append(_message(r))
    return Append(r.tag, mailbox, tuple(messages))


def parse_replace(r: Reader, uid: bool) -> Replace:
    """RFC 8508 §6: ``[UID] REPLACE number mailbox append-message``."""
    r.sp("message number after REPLACE")
    number = r.number("UID after UID REPLACE" if uid else "message number", nonzero=True)
    r.sp("mailbox name after the message number")
    mailbox = r.mailbox()
    r.sp("message after the mailbox name")
    return Replace(r.tag, uid, number, mailbox, _message(r))
