"""SEARCH program records (RFC 9051 §6.4.4, RFC 7162 §3.1.5 MODSEQ).

Theory of operation
-------------------
A search program is a tree: a top-level list of keys is an implicit AND (``SearchAnd``), ``OR``
and ``NOT`` nest, parentheses group. The parser normalises the many spellings into few node
types so the session's evaluator (and any SQL translation) has few cases:

* flag keys (ANSWERED, UNSEEN, KEYWORD x, ...) become ``SearchFlag(flag, present)``;
  NEW is ``RECENT UNSEEN`` and OLD is ``NOT RECENT`` (RFC 3501 §6.4.4);
* address and header keys (FROM, TO, CC, BCC, SUBJECT, HEADER name value) become
  ``SearchHeader`` with the lower-case field name;
* the six date keys become ``SearchDate`` (internal date or Date: header, before/on/since);
* LARGER/SMALLER become ``SearchSize``; sequence sets and UID sets keep ``SequenceSet``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from courriel.wire.imap.sequence import SequenceSet


class DateField(enum.Enum):
    INTERNAL = "internal"  # BEFORE, ON, SINCE: the internal date
    SENT = "sent"  # SENTBEFORE, SENTON, SENTSINCE: the Date: header field
    SAVED = "saved"  # SAVEDBEFORE, SAVEDON, SAVEDSINCE: the save date (RFC 8514 §4)


class DateOp(enum.Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"  # on or after


@dataclass(frozen=True, slots=True)
class SearchAll:
    pass


@dataclass(frozen=True, slots=True)
class SearchFlag:
    flag: str  # "\\Seen", or a keyword
    present: bool


@dataclass(frozen=True, slots=True)
class SearchRecent:
    recent: bool


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """Substring match in a header field; an empty value matches every message having it."""

    name: str  # lower-case field name
    value: str


@dataclass(frozen=True, slots=True)
class SearchBody:
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    value: str  # header and body


@dataclass(frozen=True, slots=True)
class SearchDate:
    field: DateField
    op: DateOp
    date: date


@dataclass(frozen=True, slots=True)
class SearchSize:
    larger: bool  # LARGER n: size > n; SMALLER n: size < n
    size: int


@dataclass(frozen=True, slots=True)
class SearchSequence:
    sequence_set: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchUid:
    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] n; the entry is accepted and kept."""

    modseq: int
    entry: tuple[str, str] | None = None  # ("/flags/\\draft", "all" | "priv" | "shared")


@dataclass(frozen=True, slots=True)
class SearchObjectId:
    """RFC 8474 §6: EMAILID or THREADID, compared exactly."""

    kind: str  # "EMAILID" or "THREADID"
    objectid: str


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchRecent
    | SearchHeader
    | SearchBody
    | SearchText
    | SearchDate
    | SearchSize
    | SearchSequence
    | SearchUid
    | SearchModSeq
    | SearchObjectId
    | SearchNot
    | SearchOr
    | SearchAnd
)
