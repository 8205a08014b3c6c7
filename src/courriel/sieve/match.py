"""Comparators (RFC 4790) and match types (RFC 5228 §2.7, RFC 5231) for Sieve tests.

Theory of operation
-------------------
``Matcher`` holds one test's comparator and match type and answers "does this value match any
of these keys". ``:matches`` is a glob of ``*`` and ``?`` with ``\\`` escapes; it is matched
without regular expressions, by splitting the pattern at its stars into literal segments
(where ``?`` matches any one character) and finding each segment at its earliest place. That
is a correct glob match (the first segment is anchored at the start, the last at the end, and
taking each middle segment as early as possible never loses a match) and costs at most the
pattern's length times the value's, so no pattern can backtrack catastrophically. Taking the
earliest place also gives the shortest match to each star, left to right, which is what the
match variables ``${1}`` ... of RFC 5229 §3.2 capture.

Every comparison counts against the run's step budget (``tick``), and values are cut to
``Limits.match_bytes`` characters before they are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

_RELATIONS: dict[str, Callable[[int], bool]] = {
    "gt": lambda c: c > 0,
    "ge": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "le": lambda c: c <= 0,
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
}


def _casemap(text: str) -> str:
    # RFC 4790 §9.2: only ASCII letters fold; other characters compare as octets.
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _numeric(text: str) -> int | None:
    """RFC 4790 §9.1: the leading digits as a number; None (positive infinity) if none."""
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return int(text[:end]) if end else None


def _compare_numeric(a: str, b: str) -> int:
    x, y = _numeric(a), _numeric(b)
    if x is None or y is None:
        return (x is None) - (y is None)  # no digits sorts after every number
    return (x > y) - (x < y)


@dataclass(frozen=True, slots=True)
class _Segment:
    chars: str  # with "?" standing for any one character when ``wild`` marks it
    wild: tuple[bool, ...]


def _segments(pattern: str) -> list[_Segment]:
    """The pattern split at unescaped ``*`` into literal segments."""
    segments: list[_Segment] = []
    chars: list[str] = []
    wild: list[bool] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            chars.append(pattern[i + 1])
            wild.append(False)
            i += 2
            continue
        if ch == "*":
            segments.append(_Segment("".join(chars), tuple(wild)))
            chars, wild = [], []
        else:
            chars.append(ch)
            wild.append(ch == "?")
        i += 1
    segments.append(_Segment("".join(chars), tuple(wild)))
    return segments


def _segment_at(seg: _Segment, value: str, pos: int) -> bool:
    if pos + len(seg.chars) > len(value):
        return False
    return all(
        w or value[pos + k] == ch for k, (ch, w) in enumerate(zip(seg.chars, seg.wild, strict=True))
    )


def _find(seg: _Segment, value: str, start: int, tick: Callable[[int], None]) -> int:
    if not any(seg.wild):
        tick(1 + (len(value) - start) // 64)  # str.find is linear and fast
        return value.find(seg.chars, start)
    for pos in range(start, len(value) - len(seg.chars) + 1):
        tick(1 + len(seg.chars) // 16)
        if _segment_at(seg, value, pos):
            return pos
    return -1


def glob(pattern: str, value: str, tick: Callable[[int], None]) -> list[tuple[int, int]] | None:
    """``value`` against a :matches pattern: None, or the span each wildcard matched, in order."""
    segments = _segments(pattern)
    first, last = segments[0], segments[-1]
    if not _segment_at(first, value, 0):
        return None
    spans: list[tuple[int, int]] = [(k, k + 1) for k, w in enumerate(first.wild) if w]
    if len(segments) == 1:
        return spans if len(value) == len(first.chars) else None
    pos = len(first.chars)
    end_of_last = len(value) - len(last.chars)
    if end_of_last < pos or not _segment_at(last, value, end_of_last):
        return None
    for seg in segments[1:-1]:
        found = _find(seg, value, pos, tick)
        if found < 0 or found + len(seg.chars) > end_of_last:
            return None
        spans.append((pos, found))  # the star before this segment, as short as can be
        spans.extend((found + k, found + k + 1) for k, w in enumerate(seg.wild) if w)
        pos = found + len(seg.chars)
    spans.append((pos, end_of_last))
    spans.extend((end_of_last + k, end_of_last + k + 1) for k, w in enumerate(last.wild) if w)
    return spans


@dataclass(slots=True)
class Matcher:
    """One test's comparator and match type; ``captures`` are the last :matches' wildcards."""

    comparator: str
    match_type: str  # ":is" | ":contains" | ":matches" | ":count" | ":value"
    relation: str  # for :count and :value
    tick: Callable[[int], None]
    limit: int
    captures: list[str] | None = None

    @classmethod
    def of(cls, tags: dict[str, object], tick: Callable[[int], None], limit: int) -> Matcher:
        comparator = tags.get(":comparator", "i;ascii-casemap")  # RFC 5228 §2.7.3 default
        match_type = next(
            (t for t in (":is", ":contains", ":matches", ":count", ":value") if t in tags), ":is"
        )
        relation = tags.get(match_type) if match_type in (":count", ":value") else "eq"
        assert isinstance(comparator, str) and isinstance(relation, str)
        return cls(comparator, match_type, relation, tick, limit)

    def fold(self, text: str) -> str:
        if self.comparator == "i;ascii-casemap":
            return _casemap(text)
        return text

    def compare(self, a: str, b: str) -> int:
        if self.comparator == "i;ascii-numeric":
            return _compare_numeric(a, b)
        x, y = self.fold(a), self.fold(b)
        if self.comparator == "i;octet":
            x_b, y_b = x.encode("utf-8"), y.encode("utf-8")
            return (x_b > y_b) - (x_b < y_b)
        return (x > y) - (x < y)

    def one(self, value: str, key: str) -> bool:
        value = value[: self.limit]
        self.tick(1)
        match self.match_type:
            case ":is":
                return self.compare(value, key) == 0
            case ":value":
                return _RELATIONS[self.relation](self.compare(value, key))
            case ":contains":
                if self.comparator == "i;ascii-numeric":
                    return False  # RFC 4790 §9.1: no substring operation
                self.tick(1 + len(value) // 64)
                return self.fold(key) in self.fold(value)
            case ":matches":
                if self.comparator == "i;ascii-numeric":
                    return False
                # Folding changes ASCII letters one for one, so spans in the folded value are
                # spans in the value as written, and captures keep its case.
                spans = glob(self.fold(key), self.fold(value), self.tick)
                if spans is None:
                    return False
                self.captures = [value] + [value[a:b] for a, b in spans]  # ${0} is the whole
                return True
        return False

    def any(self, values: Iterable[str], keys: Sequence[str]) -> bool:
        """RFC 5228 §2.7: true when any value matches any key (or, with :count, the count)."""
        if self.match_type == ":count":
            count = sum(1 for _ in values)
            return any(_RELATIONS[self.relation](_compare_numeric(str(count), key)) for key in keys)
        return any(self.one(value, key) for value in values for key in keys)
