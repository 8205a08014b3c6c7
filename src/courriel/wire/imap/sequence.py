"""Sequence sets: parsing, resolving against a mailbox, and compressing for output.

Theory of operation
-------------------
A client writes ``1:3,7,10:*`` (RFC 9051 §9 ``sequence-set``); ``*`` stands for the largest
number in use (the last message sequence number, or the largest UID), and a range may be
written backwards (``*:3`` is ``3:*``). ``$`` alone names the result saved by a previous
``SEARCH RETURN (SAVE)`` (RFC 5182 §2.1).

``SequenceSet`` keeps the ranges exactly as written, with ``STAR`` (0, never a valid number)
for ``*``, because only the session knows what ``*`` means at the time the command runs.
``resolve`` turns it into sorted, merged, inclusive ranges for a given largest number; the
session then walks ranges rather than materialising huge sets such as ``1:4294967295``.

``compress`` is the inverse used on output (COPYUID, VANISHED, ESEARCH ALL, MODIFIED): sorted
numbers in, ``1:3,5`` out.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

STAR = 0  # stands for "*" in a range; 0 is never a valid sequence number or UID
MAX_NUMBER = 0xFFFFFFFF  # RFC 9051 §9 nz-number fits in 32 bits


class SequenceSyntaxError(ValueError):
    """The text is not a sequence set; the message says why."""


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges as the client wrote them (``STAR`` for ``*``), or the saved search result."""

    ranges: tuple[tuple[int, int], ...] = ()
    saved: bool = False  # "$": the session substitutes the saved SEARCH result (RFC 5182)
    # A set may hold thousands of ranges and is asked about once per message: hashing it
    # once keeps each lookup of its resolved form (``_bounds``) O(1) rather than O(ranges).
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.ranges, self.saved)))

    def __hash__(self) -> int:
        return self._hash

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, inclusive ``(low, high)`` ranges with ``*`` replaced by ``largest``.

        Ranges entirely above ``largest`` are kept only for UID sets, where they simply match
        nothing; callers clip with ``clip`` when they need numbers that exist.
        """
        if self.saved:
            raise ValueError("a saved result ($) must be substituted by the session")
        spans = []
        for a, b in self.ranges:
            a = largest if a == STAR else a
            b = largest if b == STAR else b
            spans.append((a, b) if a <= b else (b, a))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1] + 1:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged

    def clip(self, largest: int) -> list[tuple[int, int]]:
        """``resolve`` limited to ``1..largest`` (empty when the mailbox is empty)."""
        if largest < 1:
            return []
        out = []
        for a, b in self.resolve(largest):
            if a > largest:
                break
            out.append((max(a, 1), min(b, largest)))
        return out

    def contains(self, number: int, largest: int) -> bool:
        """Whether the set names ``number``: a binary search over ranges resolved once."""
        starts, ends = _bounds(self, largest)
        i = bisect.bisect_right(starts, number) - 1
        return i >= 0 and number <= ends[i]

    def iter(self, largest: int) -> Iterator[int]:
        """Each number in ``1..largest`` that the set names, ascending, once."""
        for a, b in self.clip(largest):
            yield from range(a, b + 1)

    def to_bytes(self) -> bytes:
        if self.saved:
            return b"$"
        return b",".join(_range_bytes(a, b) for a, b in self.ranges)


@functools.lru_cache(maxsize=256)
def _bounds(sset: SequenceSet, largest: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Starts and ends of the merged ranges, resolved once per set and largest number."""
    spans = sset.resolve(largest)
    return tuple(a for a, _ in spans), tuple(b for _, b in spans)


def _range_bytes(a: int, b: int) -> bytes:
    sa = b"*" if a == STAR else str(a).encode()
    if a == b:
        return sa
    return sa + b":" + (b"*" if b == STAR else str(b).encode())


def _number(text: bytes) -> int:
    if text == b"*":
        return STAR
    # RFC 9051 §9 nz-number: no leading zero, 1..4294967295
    if not text.isdigit() or text[0] == 0x30 or len(text) > 10:
        raise SequenceSyntaxError(f"Invalid number {text.decode('ascii', 'replace')!r}")
    n = int(text)
    if n > MAX_NUMBER:
        raise SequenceSyntaxError(f"Number {n} is out of range")
    return n


def parse_sequence_set(text: bytes, max_ranges: int, *, allow_saved: bool = True) -> SequenceSet:
    """Parses ``text`` (already cut at the next space or parenthesis)."""
    if text == b"$":
        if not allow_saved:
            raise SequenceSyntaxError("$ is not allowed here")
        return SequenceSet(saved=True)  # RFC 5182 §2.1
    parts = text.split(b",")
    if len(parts) > max_ranges:
        raise SequenceSyntaxError(f"Too many ranges in sequence set (limit {max_ranges})")
    ranges = []
    for part in parts:
        a, sep, b = part.partition(b":")
        if not a or (sep and not b):
            raise SequenceSyntaxError("Empty element in sequence set")
        lo = _number(a)
        ranges.append((lo, _number(b) if sep else lo))
    return SequenceSet(tuple(ranges))


def compress(numbers: Iterable[int]) -> bytes:
    """``1:3,5`` from ascending (or unsorted) numbers; duplicates are merged."""
    out: list[bytes] = []
    start = prev = -2
    for n in sorted(set(numbers)):
        if n == prev + 1:
            prev = n
            continue
        if prev >= 0:
            out.append(_range_bytes(start, prev))
        start = prev = n
    if prev >= 0:
        out.append(_range_bytes(start, prev))
    return b",".join(out)
