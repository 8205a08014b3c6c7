"""The SEARCH grammar: every key, nesting, OR/NOT, dates, CHARSET and ESEARCH options."""

from __future__ import annotations

from datetime import date

import pytest

from courriel.wire.imap import BadCharset
from courriel.wire.imap import commands as c
from courriel.wire.imap.search import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchRecent,
    SearchSequence,
    SearchSize,
    SearchText,
    SearchUid,
)
from courriel.wire.imap.sequence import STAR, SequenceSet

KEYS: list[tuple[bytes, object]] = [
    (b"ALL", SearchAll()),
    (b"ANSWERED", SearchFlag("\\Answered", True)),
    (b"DELETED", SearchFlag("\\Deleted", True)),
    (b"DRAFT", SearchFlag("\\Draft", True)),
    (b"FLAGGED", SearchFlag("\\Flagged", True)),
    (b"SEEN", SearchFlag("\\Seen", True)),
    (b"UNANSWERED", SearchFlag("\\Answered", False)),
    (b"UNDELETED", SearchFlag("\\Deleted", False)),
    (b"UNDRAFT", SearchFlag("\\Draft", False)),
    (b"UNFLAGGED", SearchFlag("\\Flagged", False)),
    (b"unseen", SearchFlag("\\Seen", False)),
    (b"KEYWORD $Forwarded", SearchFlag("$Forwarded", True)),
    (b"UNKEYWORD Junk", SearchFlag("Junk", False)),
    (b"RECENT", SearchRecent(True)),
    (b"OLD", SearchRecent(False)),
    (b"NEW", SearchAnd((SearchRecent(True), SearchFlag("\\Seen", False)))),
    (b"BCC bob", SearchHeader("bcc", "bob")),
    (b'CC "Jo Doe"', SearchHeader("cc", "Jo Doe")),
    (b"FROM smith", SearchHeader("from", "smith")),
    (b'SUBJECT ""', SearchHeader("subject", "")),
    (b"TO {3+}\r\nbob", SearchHeader("to", "bob")),
    (b"HEADER X-Spam-Flag YES", SearchHeader("x-spam-flag", "YES")),
    (b"BODY pizza", SearchBody("pizza")),
    (b'TEXT "caf\xc3\xa9"', SearchText("caf\u00e9")),
    (b"BEFORE 1-Feb-1994", SearchDate(DateField.INTERNAL, DateOp.BEFORE, date(1994, 2, 1))),
    (b"ON 29-feb-2024", SearchDate(DateField.INTERNAL, DateOp.ON, date(2024, 2, 29))),
    (b'SINCE "01-JAN-2026"', SearchDate(DateField.INTERNAL, DateOp.SINCE, date(2026, 1, 1))),
    (b"SENTBEFORE 3-Mar-2000", SearchDate(DateField.SENT, DateOp.BEFORE, date(2000, 3, 3))),
    (b"SENTON 3-Mar-2000", SearchDate(DateField.SENT, DateOp.ON, date(2000, 3, 3))),
    (b"SENTSINCE 3-Mar-2000", SearchDate(DateField.SENT, DateOp.SINCE, date(2000, 3, 3))),
    (b"LARGER 1024", SearchSize(True, 1024)),
    (b"SMALLER 10", SearchSize(False, 10)),
    (b"UID 1:*", SearchUid(SequenceSet(((1, STAR),)))),
    (b"UID $", SearchUid(SequenceSet(saved=True))),
    (b"2:4,7", SearchSequence(SequenceSet(((2, 4), (7, 7))))),
    (b"*", SearchSequence(SequenceSet(((STAR, STAR),)))),
    (b"$", SearchSequence(SequenceSet(saved=True))),
    (b"MODSEQ 620162338", SearchModSeq(620162338)),
    (
        b'MODSEQ "/flags/\\\\draft" all 620162338',
        SearchModSeq(620162338, ("/flags/\\draft", "all")),
    ),
    (b"NOT SEEN", SearchNot(SearchFlag("\\Seen", True))),
    (b"OR SEEN FLAGGED", SearchOr(SearchFlag("\\Seen", True), SearchFlag("\\Flagged", True))),
    (b"(SEEN)", SearchFlag("\\Seen", True)),
]


@pytest.mark.parametrize(("text", "expected"), KEYS, ids=[k.decode("latin-1") for k, _ in KEYS])
def test_each_search_key(parse, text: bytes, expected: object) -> None:
    cmd = parse(b"a1 SEARCH " + text)
    assert cmd == c.Search("a1", False, None, expected)


def test_nested_or_not_and_groups(parse) -> None:
    cmd = parse(b"a1 UID SEARCH OR (FROM alice SINCE 1-Jan-2026) NOT (OR SEEN 1:5) UNDELETED")
    assert cmd == c.Search(
        "a1",
        True,
        None,
        SearchAnd(
            (
                SearchOr(
                    SearchAnd(
                        (
                            SearchHeader("from", "alice"),
                            SearchDate(DateField.INTERNAL, DateOp.SINCE, date(2026, 1, 1)),
                        )
                    ),
                    SearchNot(
                        SearchOr(SearchFlag("\\Seen", True), SearchSequence(SequenceSet(((1, 5),))))
                    ),
                ),
                SearchFlag("\\Deleted", False),
            )
        ),
    )


def test_or_of_or(parse) -> None:
    cmd = parse(b"a1 SEARCH OR OR SEEN DRAFT OR FLAGGED DELETED")
    seen, draft = SearchFlag("\\Seen", True), SearchFlag("\\Draft", True)
    flagged, deleted = SearchFlag("\\Flagged", True), SearchFlag("\\Deleted", True)
    assert cmd == c.Search(
        "a1", False, None, SearchOr(SearchOr(seen, draft), SearchOr(flagged, deleted))
    )


@pytest.mark.parametrize("charset", [b"UTF-8", b"utf-8", b"US-ASCII", b'"UTF-8"'])
def test_supported_charsets(parse, charset: bytes) -> None:
    cmd = parse(b"a1 SEARCH CHARSET " + charset + b" SUBJECT {6+}\r\n\xc3\xa9t\xc3\xa9s")
    assert isinstance(cmd, c.Search)
    assert cmd.charset == charset.strip(b'"').decode().upper()
    assert cmd.criteria == SearchHeader("subject", "\u00e9t\u00e9s")


def test_other_charsets_are_a_tagged_no_badcharset(reply) -> None:
    message = reply(b"a1 SEARCH CHARSET ISO-8859-1 SUBJECT x")
    assert message == b"a1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset ISO-8859-1\r\n"


def test_badcharset_is_a_typed_error(parse) -> None:
    with pytest.raises(BadCharset) as info:
        parse(b"a1 SEARCH CHARSET KOI8-R ALL")
    assert info.value.charset == "KOI8-R"
    assert not info.value.fatal


def test_esearch_return_options_with_charset(parse) -> None:
    cmd = parse(b"a1 UID SEARCH RETURN (COUNT min) CHARSET UTF-8 UNSEEN")
    assert cmd == c.Search("a1", True, "UTF-8", SearchFlag("\\Seen", False), ("COUNT", "MIN"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", b"a1 BAD Expected search key\r\n"),
        (b"FOO", b"a1 BAD Unknown search key FOO\r\n"),
        (b"BEFORE 1-Foo-2000", b"a1 BAD Invalid date after BEFORE, expected d-Mon-yyyy\r\n"),
        (b"SINCE 31-Feb-2000", b"a1 BAD Invalid date after SINCE, expected d-Mon-yyyy\r\n"),
        (b"ON 2000-01-01", b"a1 BAD Invalid date after ON, expected d-Mon-yyyy\r\n"),
        (b"OR SEEN", b"a1 BAD Expected second search key after OR\r\n"),
        (b"NOT", b"a1 BAD Expected search key after NOT\r\n"),
        (b"(SEEN", b"a1 BAD Expected ')' to end the search key group\r\n"),
        (b"()", b"a1 BAD Expected search key\r\n"),
        (b"LARGER x", b"a1 BAD Expected size after LARGER\r\n"),
        (b"HEADER Subject", b"a1 BAD Expected string after the header field name\r\n"),
        (b"RETURN (FOO) ALL", b"a1 BAD Unknown search return option FOO\r\n"),
        (b'MODSEQ "/x" all 5', b"a1 BAD MODSEQ entry name must start with /flags/\r\n"),
        (
            b'MODSEQ "/flags/\\\\seen" any 5',
            b"a1 BAD MODSEQ entry type must be priv, shared or all\r\n",
        ),
        (b"0", b"a1 BAD Invalid number '0' in sequence set\r\n"),
        (b"SEEN  DRAFT", b"a1 BAD Expected search key\r\n"),
        (b'SUBJECT "\xff"', b"a1 BAD string after SUBJECT is not valid UTF-8\r\n"),
    ],
)
def test_malformed_search(reply, text: bytes, message: bytes) -> None:
    assert reply(b"a1 SEARCH " + text) == message


def test_search_without_criteria(reply) -> None:
    assert reply(b"a1 SEARCH") == b"a1 BAD Expected search criteria after SEARCH\r\n"


def test_search_keys_and_strings_are_bounded(parse, reply) -> None:
    # Every key is evaluated per message: 256 keys pass, the 257th is a BAD before any work.
    assert parse(b"a1 SEARCH " + b" ".join([b"SEEN"] * 256))
    too_many = b"a1 SEARCH " + b" ".join([b"SEEN"] * 256) + b" NOT DRAFT"
    assert reply(too_many) == b"a1 BAD Too many search keys (limit 256)\r\n"
    assert parse(b'a1 SEARCH TEXT "' + b"x" * 4096 + b'"')
    long_string = b'a1 SEARCH TEXT "' + b"x" * 4097 + b'"'
    assert reply(long_string) == b"a1 BAD Search string longer than 4096 octets\r\n"
