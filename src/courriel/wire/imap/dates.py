"""IMAP dates: ``d-Mon-yyyy`` for SEARCH and ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` for APPEND and
INTERNALDATE (RFC 9051 §9 ``date``, ``date-time``).

Month names are matched case-insensitively (RFC 9051 §9, date-month is a case-insensitive
string) and written in their canonical case.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.upper(): i + 1 for i, m in enumerate(MONTHS)}
_DATE_RE = re.compile(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_DATE_TIME_RE = re.compile(
    rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)


def parse_date(text: bytes) -> date | None:
    """``1-Feb-1994`` as a date, or None when it is not a valid IMAP date."""
    m = _DATE_RE.match(text)
    if m is None:
        return None
    month = _MONTH_NUMBER.get(m.group(2).decode("ascii").upper())
    if month is None:
        return None
    try:
        return date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        return None


def parse_date_time(text: bytes) -> datetime | None:
    """``17-Jul-1996 02:44:25 -0700`` as an aware datetime, or None when invalid."""
    m = _DATE_TIME_RE.match(text)
    if m is None:
        return None
    month = _MONTH_NUMBER.get(m.group(2).decode("ascii").upper())
    zh, zm = int(m.group(8)), int(m.group(9))
    if month is None or zm > 59:
        return None
    offset = timedelta(hours=zh, minutes=zm)
    try:
        tz = timezone(-offset if m.group(7) == b"-" else offset)
        return datetime(
            int(m.group(3)),
            month,
            int(m.group(1).strip()),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=tz,
        )
    except ValueError:
        return None


def format_date_time(when: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (quoted) for INTERNALDATE; naive means UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{when.day:02d}-{MONTHS[when.month - 1]}-{when.year:04d} '
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    ).encode("ascii")
