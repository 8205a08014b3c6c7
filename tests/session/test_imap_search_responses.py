"""SEARCH and ESEARCH responses (RFC 9051 §7.3.4, RFC 4731 §3.1, RFC 5182, RFC 7162 §3.1.5)."""

from __future__ import annotations

import pytest

from courriel.session.imap.search import esearch_response, search_response
from courriel.wire.imap import Connection
from courriel.wire.imap.commands import Search


def returns(text: str) -> tuple[str, ...] | None:
    """The RETURN options the IMAP parser makes of ``SEARCH <text> ALL``."""
    conn = Connection()
    conn.receive_data(b"A1 SEARCH " + text.encode() + b" ALL\r\n")
    event = conn.next_event()
    assert isinstance(event, Search), event
    return event.returns


def test_search_with_modseq_as_in_rfc_7162() -> None:
    # RFC 7162 §3.1.5 example
    assert search_response([2, 5, 6, 7, 11, 12, 18, 19, 20, 23], modseq=917162500) == (
        b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"
    )


def test_search_without_matches_has_no_modseq() -> None:
    assert search_response([], modseq=12) == b"* SEARCH\r\n"
    assert search_response([4, 9]) == b"* SEARCH 4 9\r\n"


@pytest.mark.parametrize(
    ("opts", "matched", "expected"),
    [
        # RFC 4731 §3.1 examples
        ("RETURN (MIN COUNT)", [2, 10, 11], b'* ESEARCH (TAG "A1") MIN 2 COUNT 3\r\n'),
        ("RETURN ()", [2, 10, 11], b'* ESEARCH (TAG "A1") ALL 2,10:11\r\n'),
        ("RETURN (MIN MAX)", [], b'* ESEARCH (TAG "A1")\r\n'),
        ("RETURN (ALL)", [], b'* ESEARCH (TAG "A1")\r\n'),
        ("RETURN (COUNT)", [], b'* ESEARCH (TAG "A1") COUNT 0\r\n'),
        (
            "RETURN (MAX ALL MIN COUNT)",
            [7, 3, 4, 5],
            b'* ESEARCH (TAG "A1") MIN 3 MAX 7 ALL 3:5,7 COUNT 4\r\n',
        ),
        # RFC 5182 §2.1: SAVE alone sends no ESEARCH; with others it changes nothing
        ("RETURN (SAVE)", [1, 2], b""),
        ("RETURN (SAVE MIN)", [4, 8], b'* ESEARCH (TAG "A1") MIN 4\r\n'),
    ],
)
def test_esearch(opts: str, matched: list[int], expected: bytes) -> None:
    assert esearch_response("A1", False, returns(opts), matched) == expected


def test_esearch_without_options_means_all() -> None:
    assert esearch_response("t", False, None, [1, 2, 3]) == b'* ESEARCH (TAG "t") ALL 1:3\r\n'
    assert esearch_response("t", False, (), [5]) == b'* ESEARCH (TAG "t") ALL 5\r\n'


def test_uid_esearch_with_modseq() -> None:
    # RFC 7162 §3.1.5: MODSEQ after the other results, only when something matched
    out = esearch_response("a", True, ("ALL",), [1, 2, 3, 5], modseq=1236)
    assert out == b'* ESEARCH (TAG "a") UID ALL 1:3,5 MODSEQ 1236\r\n'
    assert esearch_response("a", True, ("COUNT",), [], modseq=1236) == (
        b'* ESEARCH (TAG "a") UID COUNT 0\r\n'
    )
