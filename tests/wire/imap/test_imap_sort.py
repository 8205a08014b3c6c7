"""The SORT and THREAD grammar (RFC 5256 §4, RFC 5957, RFC 5267 ESORT) and their responses."""

from __future__ import annotations

import pytest

from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.search import SearchAll, SearchAnd, SearchFlag, SearchHeader
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm, ThreadForest


def test_sort_with_every_key_and_reverse(parse) -> None:
    cmd = parse(
        b"a1 SORT (REVERSE ARRIVAL cc DATE FROM SIZE SUBJECT TO DISPLAYFROM reverse DISPLAYTO)"
        b" UTF-8 ALL"
    )
    assert isinstance(cmd, c.Sort)
    assert not cmd.uid and cmd.charset == "UTF-8" and cmd.search == SearchAll()
    assert cmd.returns is None
    assert cmd.criteria == (
        SortCriterion(SortKey.ARRIVAL, True),
        *(SortCriterion(k) for k in (SortKey.CC, SortKey.DATE, SortKey.FROM, SortKey.SIZE)),
        *(SortCriterion(k) for k in (SortKey.SUBJECT, SortKey.TO, SortKey.DISPLAYFROM)),
        SortCriterion(SortKey.DISPLAYTO, True),
    )


def test_uid_sort_with_esort_return_and_search_keys(parse) -> None:
    cmd = parse(b"a1 UID SORT RETURN (MIN COUNT MIN) (DATE) us-ascii UNSEEN FROM ann")
    assert isinstance(cmd, c.Sort)
    assert cmd.uid and cmd.returns == ("MIN", "COUNT")
    assert cmd.search == SearchAnd((SearchFlag("\\Seen", False), SearchHeader("from", "ann")))
    assert parse(b"a1 SORT RETURN () (SIZE) UTF-8 ALL").returns == ("ALL",)  # RFC 4731 §3.1


def test_thread_algorithms(parse) -> None:
    cmd = parse(b"a1 UID THREAD references UTF-8 SINCE 1-Jan-2020")
    assert isinstance(cmd, c.Thread)
    assert cmd.uid and cmd.algorithm is ThreadAlgorithm.REFERENCES
    cmd = parse(b"a1 THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert isinstance(cmd, c.Thread) and cmd.algorithm is ThreadAlgorithm.ORDEREDSUBJECT


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"a1 SORT", b"Expected sort criteria after SORT"),
        (b"a1 SORT () UTF-8 ALL", b"Expected sort key"),
        (b"a1 SORT (REVERSE) UTF-8 ALL", b"Expected sort key after REVERSE"),
        (b"a1 SORT (REVERSE REVERSE DATE) UTF-8 ALL", b"Unknown sort key REVERSE"),
        (b"a1 SORT (MODSEQ) UTF-8 ALL", b"Unknown sort key MODSEQ"),
        (b"a1 SORT (DATE) UTF-8", b"Expected search criteria after the charset"),
        (b"a1 SORT (DATE)", b"Expected charset after the SORT criteria"),
        (b"a1 SORT RETURN (SAVE) (DATE) UTF-8 ALL", b"Unknown search return option SAVE"),
        (b"a1 SORT (" + b"DATE " * 16 + b"SIZE) UTF-8 ALL", b"Too many sort criteria"),
        (b"a1 THREAD UTF-8 ALL", b"Unknown threading algorithm UTF-8"),
        (b"a1 THREAD X-JWZ UTF-8 ALL", b"Unknown threading algorithm X-JWZ"),
        (b"a1 THREAD REFERENCES UTF-8 NOSUCHKEY", b"Unknown search key NOSUCHKEY"),
    ],
)
def test_malformed_sort_and_thread_are_bad(reply, line: bytes, why: bytes) -> None:
    answer = reply(line)
    assert answer.startswith(b"a1 BAD ") and why in answer, answer


def test_unsupported_charset_is_no_badcharset(reply) -> None:
    assert reply(b"a1 SORT (DATE) KOI8-R ALL") == (
        b"a1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset KOI8-R\r\n"
    )
    assert reply(b"a1 THREAD REFERENCES ISO-8859-1 ALL").startswith(b"a1 NO [BADCHARSET ")


def test_responses() -> None:
    assert r.sort([3, 1, 2]) == b"* SORT 3 1 2\r\n"
    assert r.sort([]) == b"* SORT\r\n"
    assert r.sort([4], modseq=9) == b"* SORT 4 (MODSEQ 9)\r\n"
    # RFC 5256 §4's example shape: one child continues the list, several get parentheses
    # nodes:   0  1  2  3  4   5   6  7  8 (a placeholder)
    number = [2, 3, 6, 4, 23, 44, 8, 9, 0]
    first = [-1, 2, 3, 4, -1, -1, -1, -1, 6]
    after = [-1, -1, -1, 5, -1, -1, 7, -1, -1]
    forest = ThreadForest([0, 1, 8], number, first, after)
    assert r.thread(forest) == b"* THREAD (2)(3 6 (4 23)(44))((8)(9))\r\n"
    assert forest.children(8) == [6, 7] and forest.children(0) == []
    assert r.thread(ThreadForest([], [], [], [])) == b"* THREAD\r\n"
    # ESORT keeps the sort order in ALL (RFC 5267 §3.2)
    out = r.esearch("t", uid=True, all_numbers=[5, 6, 7, 2, 1], in_order=True)
    assert out == b'* ESEARCH (TAG "t") UID ALL 5:7,2,1\r\n'
