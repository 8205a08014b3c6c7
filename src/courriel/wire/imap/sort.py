"""SORT and THREAD records (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO).

Theory of operation
-------------------
A SORT program is a list of criteria, each a key and whether REVERSE applies to it (RFC 5256 §3:
REVERSE reverses the one key that follows it). A THREAD result is a ``ThreadForest``: nodes
numbered 0..n-1 in flat arrays, each with its message number (0 for the placeholder of a
message that is referenced but not present, only ever at the top, RFC 5256 §3 REFERENCES
step 3), its first child and its next sibling (-1 for none). Flat arrays of integers, not
one object per node: a mailbox of 100,000 messages makes no 100,000 objects for the garbage
collector to walk. The response encoder walks it without recursion, as a thread may be
100,000 deep.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class ThreadForest:
    """Threads as a first-child / next-sibling tree over node indexes (-1: none)."""

    roots: Sequence[int]  # the top of each thread, in order
    number: Sequence[int]  # the message number of each node; 0: a placeholder
    first_child: Sequence[int]
    next_sibling: Sequence[int]

    def children(self, node: int) -> list[int]:
        out: list[int] = []
        child = self.first_child[node]
        while child >= 0:
            out.append(child)
            child = self.next_sibling[child]
        return out
