"""Parsers for SORT and THREAD, and their UID forms (RFC 5256 §4, RFC 5957, RFC 5267 ESORT).

Theory of operation
-------------------
``SORT [RETURN (opts)] (criteria) charset search-key...`` and ``THREAD algorithm charset
search-key...``. Unlike SEARCH, the charset is required (RFC 5256 §4: ``SP charset SP``); an
unsupported one is ``NO [BADCHARSET]`` as for SEARCH. The search keys are read by the SEARCH
parser, with its bounds on depth, number and string length. A criteria list holds at most
``MAX_CRITERIA`` entries: each costs one pass over the matched messages.
"""

from __future__ import annotations

from courriel.wire.imap.commands import CancelUpdate, Sort, Thread
from courriel.wire.imap.lexer import Reader
from courriel.wire.imap.parse_search import CHARSETS, BadCharset, return_options, search_program
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm

MAX_CRITERIA = 16
# RFC 5267 §3.2 (ESORT) and §4.2 (CONTEXT=SORT): what SORT RETURN accepts
SORT_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "PARTIAL", "UPDATE", "CONTEXT"})
MAX_CANCEL_TAGS = 100
_KEYS = {k.value: k for k in SortKey}
_ALGORITHMS = {a.value: a for a in ThreadAlgorithm}


def _charset(r: Reader, command: str) -> str:
    r.sp(f"charset after the {command} criteria")
    raw = r.astring("charset")
    charset = raw.decode("ascii", "replace").upper()
    if charset not in CHARSETS:
        raise BadCharset(r.tag, raw.decode("ascii", "replace"))  # RFC 5256 §3, RFC 9051 §6.4.4
    r.sp("search criteria after the charset")
    return charset


def _criteria(r: Reader) -> tuple[SortCriterion, ...]:
    r.open_paren("'(' to start the sort criteria")
    out: list[SortCriterion] = []
    while True:
        name = r.keyword("sort key")
        reverse = name == "REVERSE"
        if reverse:  # RFC 5256 §4: sort-criterion = ["REVERSE" SP] sort-key
            r.sp("sort key after REVERSE")
            name = r.keyword("sort key after REVERSE")
        key = _KEYS.get(name)
        if key is None:
            r.fail(f"Unknown sort key {name}")
        out.append(SortCriterion(key, reverse))
        if len(out) > MAX_CRITERIA:
            r.fail(f"Too many sort criteria (limit {MAX_CRITERIA})")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end the sort criteria")
    return tuple(out)


def parse_sort(r: Reader, uid: bool) -> Sort:
    r.sp("sort criteria after SORT")
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None
    if r.peek() != 0x28:
        if r.keyword("'(' or RETURN after SORT") != "RETURN":
            r.fail("Expected '(' or RETURN after SORT")
        returns, partial = return_options(r, SORT_RETURN_OPTIONS)  # RFC 5267 §3.2, §4.4
        r.sp("sort criteria after the return options")
    criteria = _criteria(r)
    charset = _charset(r, "SORT")
    return Sort(r.tag, uid, criteria, charset, search_program(r), returns, partial)


def parse_thread(r: Reader, uid: bool) -> Thread:
    r.sp("threading algorithm after THREAD")
    name = r.keyword("threading algorithm after THREAD")
    algorithm = _ALGORITHMS.get(name)
    if algorithm is None:
        r.fail(f"Unknown threading algorithm {name}")  # RFC 5256 §4: only those advertised
    charset = _charset(r, "THREAD")
    return Thread(r.tag, uid, algorithm, charset, search_program(r))


def parse_cancelupdate(r: Reader, uid: bool) -> CancelUpdate:
    """RFC 5267 §4.3: ``CANCELUPDATE "tag" *(SP "tag")``."""
    tags: list[str] = []
    while True:
        r.sp("tag of a search context")
        tags.append(r.text(r.string("tag of a search context"), "tag of a search context"))
        if len(tags) > MAX_CANCEL_TAGS:
            r.fail(f"Too many tags (limit {MAX_CANCEL_TAGS})")
        if r.at_end():
            return CancelUpdate(r.tag, tuple(tags))
