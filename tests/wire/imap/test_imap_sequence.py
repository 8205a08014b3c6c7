"""Sequence sets: syntax edge cases, resolving ``*`` and reversed ranges, compressing output."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.wire.imap.sequence import (
    MAX_NUMBER,
    STAR,
    SequenceSet,
    SequenceSyntaxError,
    compress,
    parse_sequence_set,
)


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        (b"1", ((1, 1),)),
        (b"1:*", ((1, STAR),)),
        (b"*:3", ((STAR, 3),)),
        (b"*", ((STAR, STAR),)),
        (b"5:2,9", ((5, 2), (9, 9))),
        (b"4294967295", ((MAX_NUMBER, MAX_NUMBER),)),
        (b"2,4:7,9,12:*", ((2, 2), (4, 7), (9, 9), (12, STAR))),
    ],
)
def test_parse(text: bytes, ranges: tuple[tuple[int, int], ...]) -> None:
    parsed = parse_sequence_set(text, 100)
    assert parsed == SequenceSet(ranges)
    assert parsed.to_bytes() == text


def test_saved_result() -> None:
    assert parse_sequence_set(b"$", 10) == SequenceSet(saved=True)
    with pytest.raises(SequenceSyntaxError):
        parse_sequence_set(b"$", 10, allow_saved=False)
    with pytest.raises(ValueError, match="substituted"):
        SequenceSet(saved=True).resolve(5)


@pytest.mark.parametrize(
    "text", [b"0", b"1:0", b"01", b"4294967296", b"1,", b",1", b"1::2", b"1:", b":1", b"$,1", b"1$"]
)
def test_invalid(text: bytes) -> None:
    with pytest.raises(SequenceSyntaxError):
        parse_sequence_set(text, 100)


def test_range_limit() -> None:
    assert len(parse_sequence_set(b"1,2,3", 3).ranges) == 3
    with pytest.raises(SequenceSyntaxError, match="Too many ranges"):
        parse_sequence_set(b"1,2,3,4", 3)


def test_resolve_replaces_star_orders_and_merges() -> None:
    s = parse_sequence_set(b"*:8,1:3,2:5,7", 100)
    assert s.resolve(10) == [(1, 5), (7, 10)]
    assert s.clip(4) == [(1, 4)]
    assert list(s.iter(8)) == [1, 2, 3, 4, 5, 7, 8]


def test_star_on_an_empty_mailbox_names_nothing() -> None:
    assert parse_sequence_set(b"1:*", 10).clip(0) == []


def test_uid_range_beyond_the_largest_keeps_meaning() -> None:
    # RFC 9051 §6.4.9: "UID 500:*" with UIDNEXT 200 still matches the largest UID
    s = parse_sequence_set(b"500:*", 10)
    assert s.resolve(199) == [(199, 500)]
    assert s.contains(199, 199) and not s.contains(198, 199)


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([], b""),
        ([5], b"5"),
        ([1, 2, 3, 5], b"1:3,5"),
        ([9, 1, 2, 2, 8], b"1:2,8:9"),
        ([1, 3, 5], b"1,3,5"),
    ],
)
def test_compress(numbers: list[int], text: bytes) -> None:
    assert compress(numbers) == text


@given(st.sets(st.integers(1, 10_000), max_size=200))
def test_compress_round_trips(numbers: set[int]) -> None:
    text = compress(numbers)
    if not numbers:
        assert text == b""
        return
    parsed = parse_sequence_set(text, 10_000)
    assert set(parsed.iter(10_000)) == numbers


def test_membership_of_a_huge_set_is_a_binary_search() -> None:
    # 10,000 ranges asked about 20,000 numbers: resolved once, then one bisect per number.
    sset = parse_sequence_set(b",".join(b"%d" % n for n in range(1, 20000, 2)), 10000)
    started = time.perf_counter()
    found = [n for n in range(1, 20001) if sset.contains(n, 20000)]
    assert found == list(range(1, 20000, 2))
    assert time.perf_counter() - started < 2.0  # a resolve per call took minutes
    overlapping = parse_sequence_set(b",".join([b"1:*"] * 10000), 10000)
    assert overlapping.resolve(7) == [(1, 7)]
    assert overlapping.contains(7, 7) and not overlapping.contains(8, 7)
