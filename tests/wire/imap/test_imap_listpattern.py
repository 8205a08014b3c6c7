"""LIST patterns (RFC 9051 §6.3.9): the same answers as a regular expression, in linear time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.wire.imap.listpattern import (
    MAX_PATTERN_CHARS,
    PatternTooLong,
    compile_pattern,
)


def _reference(pattern: str, name: str) -> bool:
    """The obvious backtracking regex, fine for the short names Hypothesis draws."""
    parts = ("[^/]*" if ch == "%" else ".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.fullmatch("".join(parts), name, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("reference", "pattern", "name", "expected"),
    [
        ("", "*", "Projects/2026/Q1", True),
        ("", "%", "Projects/2026", False),  # % stops at the delimiter
        ("", "%", "Projects", True),
        ("Projects/", "%", "Projects/2026", True),
        ("Projects/", "%", "Projects/2026/Q1", False),
        ("Projects/", "/Arch*", "/Archive", True),  # an absolute pattern ignores the reference
        ("", "P*Q1", "Projects/2026/Q1", True),
        ("", "P%Q1", "Projects/2026/Q1", False),
        ("", "inbox", "INBOX", True),  # RFC 9051 §5.1: INBOX in any case
        ("", "iNbOx/%", "INBOX/Sub", True),
        ("", "Inbox*", "Inboxes", True),
        ("", "box", "BOX", False),  # other names are case-sensitive
        ("", "a**%%*b", "a/x/b", True),  # a run with a * in it is a *
        ("", "a%%b", "a/b", False),  # a run of % is a %
        ("", "", "", True),
        ("", "", "x", False),
    ],
)
def test_table(reference: str, pattern: str, name: str, expected: bool) -> None:
    assert compile_pattern(reference, pattern).matches(name) is expected


@given(
    st.text(alphabet="ab/*%", max_size=12),
    st.text(alphabet="ab/", max_size=12),
)
def test_agrees_with_a_regular_expression(pattern: str, name: str) -> None:
    if pattern[:5].upper() == "INBOX":
        return  # the alphabet cannot spell it; the table covers INBOX
    assert compile_pattern("", pattern).matches(name) is _reference(pattern, name)


def test_pathological_pattern_is_linear() -> None:
    # The pattern that backtracked for ever: 60 wildcards that cannot match a 200-character name.
    pattern = "*a" * 60 + "b"
    name = "a" * 200
    compiled = compile_pattern("", pattern)
    started = time.perf_counter()
    for _ in range(100):
        assert not compiled.matches(name)
    # 100 matches of a regex would not end this century; here they take about a millisecond.
    assert time.perf_counter() - started < 1.0


def test_pattern_length_is_bounded() -> None:
    compile_pattern("", "*" * MAX_PATTERN_CHARS)
    with pytest.raises(PatternTooLong):
        compile_pattern("x" * 10, "*" * MAX_PATTERN_CHARS)
