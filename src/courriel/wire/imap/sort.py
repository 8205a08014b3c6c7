"""SORT and THREAD records (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO).

Theory of operation
-------------------
A SORT program is a list of criteria, each a key and whether REVERSE applies to it (RFC 5256 §3:
REVERSE reverses the one key that follows it). A THREAD result is a forest of ``ThreadNode``:
a node holds a message number, or None for the placeholder of a message that is referenced
but not present (only ever at the top, RFC 5256 §3 REFERENCES step 3), and its children in
order. The response encoder walks it without recursion, as a thread may be 100,000 deep.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SortKey(enum.Enum):
    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"  # RFC 5957 §3
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: SortKey
    reverse: bool = False


class ThreadAlgorithm(enum.Enum):
    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


@dataclass(slots=True)
class ThreadNode:
    number: int | None  # None: a placeholder for a referenced message not in the set
    children: list[ThreadNode] = field(default_factory=list)
