"""Date parts for the "date" and "currentdate" tests (RFC 5260 §4.2)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime

_ZONE = re.compile(r"([+-])([0-9]{2})([0-9]{2})")
_MJD_EPOCH = date(1858, 11, 17)  # RFC 5260 §4.2: julian is the Modified Julian Day


def zone_of(text: str) -> timezone | None:
    """ "+hhmm" / "-hhmm" (RFC 5260 §4.1 :zone); None when it is no zone."""
    m = _ZONE.fullmatch(text)
    if m is None or int(m.group(3)) > 59:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)


def _zone_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def date_part(moment: datetime, part: str) -> str | None:
    """The named part of ``moment`` as text; None for a part RFC 5260 §4.2 does not define."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    match part.lower():
        case "year":
            return f"{moment.year:04d}"
        case "month":
            return f"{moment.month:02d}"
        case "day":
            return f"{moment.day:02d}"
        case "date":
            return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        case "julian":
            return str((moment.date() - _MJD_EPOCH).days)
        case "hour":
            return f"{moment.hour:02d}"
        case "minute":
            return f"{moment.minute:02d}"
        case "second":
            return f"{moment.second:02d}"
        case "time":
            return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        case "iso8601":
            return moment.replace(microsecond=0).isoformat()
        case "std11":
            return format_datetime(moment)
        case "zone":
            return _zone_text(moment)
        case "weekday":
            return str((moment.weekday() + 1) % 7)  # 0 is Sunday
    return None
