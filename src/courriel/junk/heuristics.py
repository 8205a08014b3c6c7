"""Well-known signs of junk in a message's header and structure, each with points and a reason.

Theory of operation
-------------------
Each rule looks at the header fields of the message's view (``courriel.junk.view``: the
fields as the standard library's ``compat32`` parse gives them, parsed once for the tokens
too; never raises) and says, when it fires, a
``Reason``: a name in capitals (as SpamAssassin names its tests), the points it adds to the
score and a sentence. No rule alone reaches the default threshold (5): these are signs, not
proof, and legitimate mail shows one of them now and then.

===================  ======  ===============================================================
HTML_ONLY            1.0     an HTML body with no plain-text alternative
SUBJECT_ALL_CAPS     1.5     a subject of 10 or more letters, all capitals
FROM_NAME_ADDRESS    2.0     the From display name holds an address other than the sender's
DATE_IN_FUTURE       1.5     the Date is more than a day ahead of our clock
DATE_IN_PAST         1.0     the Date is more than 30 days behind it
DATE_MISSING         1.0     no Date field, or one that cannot be read (RFC 5322 §3.6)
NO_MESSAGE_ID        1.0     no Message-ID field (RFC 5322 §3.6.4 says SHOULD)
===================  ======  ===============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from courriel.junk import view
from courriel.junk.view import HEADER_LIMIT, Header, View

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    points: float
    text: str


def _html_only(raw: bytes, msg: Header) -> Reason | None:
    kind = msg.content_type
    if kind == "text/html":
        return Reason("HTML_ONLY", 1.0, "the message is HTML with no plain-text part")
    if kind.startswith("multipart/"):
        start = raw.find(b"\r\n\r\n")
        body = raw[start : start + HEADER_LIMIT * 4].lower()
        if b"content-type: text/html" in body and b"content-type: text/plain" not in body:
            return Reason("HTML_ONLY", 1.0, "the message is HTML with no plain-text part")
    return None


def _subject(msg: Header) -> Reason | None:
    subject = msg.subject
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 10 and all(c.isupper() for c in letters):
        return Reason("SUBJECT_ALL_CAPS", 1.5, "the subject is written in capitals")
    return None


def _from_name(msg: Header) -> Reason | None:
    for text in msg.froms[:3]:
        for _name, address in view.addresses((text,)):
            name = text.split("<", 1)[0] if "<" in text else ""
            for shown in _ADDRESS.findall(name):
                if shown.lower() != address.lower():
                    return Reason(
                        "FROM_NAME_ADDRESS",
                        2.0,
                        f"the From name shows {shown[:80]} but the sender is {address[:80]}",
                    )
    return None


def _date(msg: Header, now: datetime) -> Reason | None:
    value = msg.date
    if value is None:
        return Reason("DATE_MISSING", 1.0, "the message has no Date")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return Reason("DATE_MISSING", 1.0, "the Date cannot be read")
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    if when > now + timedelta(days=1):
        return Reason("DATE_IN_FUTURE", 1.5, f"the Date is {(when - now).days + 1} days ahead")
    if when < now - timedelta(days=30):
        return Reason("DATE_IN_PAST", 1.0, f"the Date is {(now - when).days} days old")
    return None


def _message_id(msg: Header) -> Reason | None:
    if not msg.message_id.strip():
        return Reason("NO_MESSAGE_ID", 1.0, "the message has no Message-ID")
    return None


def check(raw: bytes, now: datetime, seen: View | None = None) -> list[Reason]:
    """Every rule that fires on ``raw``, in the order of the table above; ``seen`` is its
    view when the caller has it (``courriel.junk.view.of``)."""
    msg = (seen or view.of(raw)).header
    found = [
        _html_only(raw, msg),
        _subject(msg),
        _from_name(msg),
        _date(msg, now),
        _message_id(msg),
    ]
    return [r for r in found if r is not None]
