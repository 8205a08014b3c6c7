"""Well-known signs of junk in a message's header and structure, each with points and a reason.

Theory of operation
-------------------
Each rule looks at the parsed header (``compat32``: never raises) and says, when it fires, a
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

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HEADER_LIMIT = 64 * 1024  # the header rules read at most this much of the message


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    points: float
    text: str


def header_of(raw: bytes) -> Message:
    end = raw.find(b"\r\n\r\n", 0, _HEADER_LIMIT)
    head = raw[: end + 4] if end >= 0 else raw[:_HEADER_LIMIT]
    return email.message_from_bytes(head, policy=email.policy.compat32)


def _html_only(raw: bytes, msg: Message) -> Reason | None:
    kind = msg.get_content_type()
    if kind == "text/html":
        return Reason("HTML_ONLY", 1.0, "the message is HTML with no plain-text part")
    if kind.startswith("multipart/"):
        start = raw.find(b"\r\n\r\n")
        body = raw[start : start + _HEADER_LIMIT * 4].lower()
        if b"content-type: text/html" in body and b"content-type: text/plain" not in body:
            return Reason("HTML_ONLY", 1.0, "the message is HTML with no plain-text part")
    return None


def _subject(msg: Message) -> Reason | None:
    subject = str(msg.get("Subject", ""))
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 10 and all(c.isupper() for c in letters):
        return Reason("SUBJECT_ALL_CAPS", 1.5, "the subject is written in capitals")
    return None


def _from_name(msg: Message) -> Reason | None:
    for field in msg.get_all("From", [])[:3]:
        text = str(field)
        for _name, address in getaddresses([text]):
            name = text.split("<", 1)[0] if "<" in text else ""
            for shown in _ADDRESS.findall(name):
                if shown.lower() != address.lower():
                    return Reason(
                        "FROM_NAME_ADDRESS",
                        2.0,
                        f"the From name shows {shown[:80]} but the sender is {address[:80]}",
                    )
    return None


def _date(msg: Message, now: datetime) -> Reason | None:
    value = msg.get("Date")
    if value is None:
        return Reason("DATE_MISSING", 1.0, "the message has no Date")
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return Reason("DATE_MISSING", 1.0, "the Date cannot be read")
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    if when > now + timedelta(days=1):
        return Reason("DATE_IN_FUTURE", 1.5, f"the Date is {(when - now).days + 1} days ahead")
    if when < now - timedelta(days=30):
        return Reason("DATE_IN_PAST", 1.0, f"the Date is {(now - when).days} days old")
    return None


def _message_id(msg: Message) -> Reason | None:
    if not str(msg.get("Message-ID", "")).strip():
        return Reason("NO_MESSAGE_ID", 1.0, "the message has no Message-ID")
    return None


def check(raw: bytes, now: datetime) -> list[Reason]:
    """Every rule that fires on ``raw``, in the order of the table above."""
    msg = header_of(raw)
    found = [
        _html_only(raw, msg),
        _subject(msg),
        _from_name(msg),
        _date(msg, now),
        _message_id(msg),
    ]
    return [r for r in found if r is not None]
