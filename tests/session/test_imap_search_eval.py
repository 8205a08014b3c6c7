"""SEARCH evaluation over real messages: every key of RFC 9051 §6.4.4, RFC 3501 RECENT/NEW/OLD
and RFC 7162 MODSEQ, nested OR/NOT, decoded headers and bodies, dates in their own zones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from courriel.mail.message import MessageMeta, parse
from courriel.session.imap.search import SearchView, matches, plan_search
from courriel.store.base import MessageInfo
from courriel.wire.imap import Connection
from courriel.wire.imap.commands import Search
from courriel.wire.imap.search import SearchKey

MESSAGES = Path(__file__).parent / "messages"


def load(name: str) -> bytes:
    return (MESSAGES / name).read_bytes().replace(b"\n", b"\r\n")


def criteria(text: str) -> SearchKey:
    """The tree the IMAP parser makes of ``SEARCH CHARSET UTF-8 <text>``."""
    conn = Connection()
    conn.receive_data(b"a1 SEARCH CHARSET UTF-8 " + text.encode() + b"\r\n")
    event = conn.next_event()
    assert isinstance(event, Search), event
    return event.criteria


@dataclass
class View:
    uids: list[int]
    saved: frozenset[int] = frozenset()

    def seq_of(self, uid: int) -> int | None:
        return self.uids.index(uid) + 1 if uid in self.uids else None

    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    @property
    def max_seq(self) -> int:
        return len(self.uids)

    @property
    def max_uid(self) -> int:
        return max(self.uids, default=0)


def zone(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


@dataclass
class Box:
    """A mailbox of four messages, each with its row, parse and raw bytes."""

    raws: list[bytes]
    infos: list[MessageInfo]
    metas: list[MessageMeta] = field(default_factory=list)
    recent: frozenset[int] = frozenset({4})

    def __post_init__(self) -> None:
        self.metas = [parse(r) for r in self.raws]

    def search(self, tree: SearchKey, view: SearchView | None = None) -> list[int]:
        view = view or View([i.uid for i in self.infos], frozenset({11, 20}))
        return [
            seq
            for seq, (info, meta, raw) in enumerate(
                zip(self.infos, self.metas, self.raws, strict=True), 1
            )
            if matches(tree, seq, info, meta, raw, view, recent=seq in self.recent)
        ]


def make_box() -> Box:
    raws = [load(n) for n in ("rfc9051-example.eml", "mixed.eml", "folded.eml", "encoded.eml")]
    rows = [
        # uid, modseq, flags, internal date (each in its own zone)
        (10, 5, {"\\Seen", "\\Answered"}, datetime(2024, 1, 1, 23, 30, tzinfo=zone(-5))),
        (11, 8, {"\\Flagged", "$Work"}, datetime(2024, 1, 2, 0, 30, tzinfo=zone(1))),
        (15, 12, {"\\Deleted", "\\Draft"}, datetime(2024, 1, 3, 12, 0, tzinfo=UTC)),
        (20, 3, set(), datetime(2024, 1, 5, 8, 0, tzinfo=UTC)),
    ]
    infos = [
        MessageInfo(uid, modseq, frozenset(flags), when, len(raw))
        for (uid, modseq, flags, when), raw in zip(rows, raws, strict=True)
    ]
    return Box(raws, infos)


BOX = make_box()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ALL", [1, 2, 3, 4]),
        ("ANSWERED", [1]),
        ("UNANSWERED", [2, 3, 4]),
        ("DELETED", [3]),
        ("UNDELETED", [1, 2, 4]),
        ("DRAFT", [3]),
        ("UNDRAFT", [1, 2, 4]),
        ("FLAGGED", [2]),
        ("UNFLAGGED", [1, 3, 4]),
        ("SEEN", [1]),
        ("UNSEEN", [2, 3, 4]),
        ("KEYWORD $Work", [2]),
        ("KEYWORD $work", [2]),  # flag names are compared without regard to case
        ("UNKEYWORD $Work", [1, 3, 4]),
        ("KEYWORD Junk", []),
        ("RECENT", [4]),
        ("NEW", [4]),  # RFC 3501 §6.4.4: RECENT UNSEEN
        ("OLD", [1, 2, 3]),  # NOT RECENT
    ],
)
def test_flag_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM gray", [1]),
        ('FROM "terry GRAY"', [1]),
        ('FROM "andré"', [4]),  # RFC 2047 Q-encoded ISO-8859-1 display name
        ('FROM "ANDRÉ DUPONT"', [4]),
        ("FROM alice@example.test", [2]),
        ("TO bob", [2]),
        ("TO x@example", [3]),
        ("CC klensin", [1]),
        ('CC "jürgen"', [2]),  # RFC 2047 B-encoded UTF-8
        ("BCC secret", [4]),
        ("BCC nobody", []),
        ('SUBJECT "réunion"', [4]),
        ('SUBJECT "RÉUNION D\'ÉQUIPE — LUNDI"', [4]),  # two adjacent encoded words joined
        ('SUBJECT "café menu"', [2]),
        ('SUBJECT "subject line"', [3]),  # folded
        ("SUBJECT minutes", [1]),
        ("HEADER X-Other one", [3]),
        ('HEADER x-other "ONE"', [3]),
        ('HEADER X-Empty ""', [3]),  # RFC 9051 §6.4.4: empty string, field present
        ('HEADER Message-ID ""', [1, 2]),
        ('HEADER Subject ""', [1, 2, 3, 4]),
        ('HEADER X-Missing ""', []),
        ('HEADER Content-Transfer-Encoding "8BIT"', [4]),
        ('HEADER Subject "second subject"', []),  # the first Subject field is the subject
    ],
)
def test_header_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BODY zebra", [2]),  # inside a message/rfc822 part
        ('BODY "crème"', [2]),  # quoted-printable ISO-8859-1, searched in UTF-8
        ('BODY "CRÈME, S\'IL"', [2]),
        ('BODY "köln"', [2]),  # base64 UTF-8 text/html
        ("BODY carol", [2]),  # the encapsulated message's header is body text
        ("BODY AAECAw", []),  # application/octet-stream is not text
        ("BODY terry", []),  # header only
        ('BODY "hello joe"', [1]),
        ('BODY "congés"', [4]),  # 8-bit UTF-8
        ("BODY preamble", []),  # outside every part
        ("TEXT terry", [1]),
        ("TEXT zebra", [2]),
        ('TEXT "réunion"', [4]),  # decoded header
        ("TEXT x-other", [3]),  # field names are text too
        ("TEXT nowhere", []),
    ],
)
def test_body_and_text_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Message 1 arrived 1-Jan 23:30 -0500 (2-Jan in UTC), message 2 on 2-Jan 00:30 +0100
        # (1-Jan in UTC): each counts on its own calendar day (RFC 9051 §6.4.4).
        ("BEFORE 2-Jan-2024", [1]),
        ("ON 1-Jan-2024", [1]),
        ("ON 2-Jan-2024", [2]),
        ("SINCE 2-Jan-2024", [2, 3, 4]),
        ("SINCE 6-Jan-2024", []),
        ("BEFORE 1-Jan-2024", []),
        # Date fields: 17-Jul-1996 -0700; 1-Jan-2024 23:30 -0500; none; 2-Jan-2024 00:15 +0900
        ("SENTON 17-Jul-1996", [1]),
        ("SENTON 1-Jan-2024", [2]),
        ("SENTON 2-Jan-2024", [4]),
        ("SENTBEFORE 1-Jan-2024", [1]),
        ("SENTBEFORE 2-Jan-2024", [1, 2]),
        ("SENTSINCE 1-Jan-2024", [2, 4]),
        ("NOT SENTSINCE 1-Jan-2024", [1, 3]),  # no Date field: matches no SENT key
    ],
)
def test_date_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


def test_size_keys() -> None:
    sizes = [i.size for i in BOX.infos]
    for n, size in enumerate(sizes, 1):
        larger = [k for k, s in enumerate(sizes, 1) if s > size]
        smaller = [k for k, s in enumerate(sizes, 1) if s < size]
        assert n not in larger and n not in smaller
        assert BOX.search(criteria(f"LARGER {size}")) == larger
        assert BOX.search(criteria(f"SMALLER {size}")) == smaller
    assert BOX.search(criteria("LARGER 0")) == [1, 2, 3, 4]
    assert BOX.search(criteria("SMALLER 1")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2:*", [2, 3, 4]),
        ("*", [4]),
        ("*:3", [3, 4]),
        ("1,3", [1, 3]),
        ("5:9", []),
        ("$", [2, 4]),  # RFC 5182: the saved UIDs 11 and 20
        ("UID 11:15", [2, 3]),
        ("UID 12:14", []),
        ("UID *", [4]),
        ("UID 16:*", [4]),
        ("UID 25:*", [4]),  # "*" is 20, so 20:25 (RFC 9051 §6.4.4)
        ("UID 1:4294967295", [1, 2, 3, 4]),
        ("UID $", [2, 4]),
        ("MODSEQ 8", [2, 3]),  # RFC 7162 §3.1.5: at least 8
        ('MODSEQ "/flags/\\\\draft" all 9', [3]),
        ("MODSEQ 13", []),
    ],
)
def test_set_and_modseq_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOT SEEN", [2, 3, 4]),
        ("NOT NOT SEEN", [1]),
        ("OR SEEN FLAGGED", [1, 2]),
        ("NOT OR FROM gray TO bob", [3, 4]),
        ("SEEN ANSWERED", [1]),
        ("(SEEN ANSWERED)", [1]),
        ("OR (DELETED DRAFT) KEYWORD $Work", [2, 3]),
        ("OR OR ANSWERED DELETED BODY zebra", [1, 2, 3]),
        ('UNSEEN NOT OR BODY zebra SUBJECT "réunion"', [3]),
        ('OR BODY "crème" BODY "köln"', [2]),  # the second key reads the parts already folded
        ('BODY zebra BODY "köln" TEXT carol', [2]),
        ("1:3 NOT 2", [1, 3]),
    ],
)
def test_nested_keys(text: str, expected: list[int]) -> None:
    assert BOX.search(criteria(text)) == expected


def test_flag_and_set_keys_need_neither_meta_nor_raw() -> None:
    tree = criteria("OR (SEEN LARGER 10 UID 1:* SINCE 1-Jan-2020) (NOT 1:2 MODSEQ 10 NOT RECENT)")
    assert plan_search(tree).needs_meta is False
    assert plan_search(tree).needs_body is False
    view = View([i.uid for i in BOX.infos])
    found = [
        seq
        for seq, info in enumerate(BOX.infos, 1)
        if matches(tree, seq, info, None, None, view, recent=seq == 4)
    ]
    assert found == [1, 3]


@pytest.mark.parametrize(
    ("text", "meta", "body"),
    [
        ("ALL", False, False),
        ("SEEN UNKEYWORD $x", False, False),
        ("BEFORE 1-Jan-2024", False, False),
        ("SENTBEFORE 1-Jan-2024", True, False),
        ("FROM a", True, False),
        ("HEADER Message-ID x", True, False),
        ("HEADER Received x", False, True),  # not kept in the meta: read the header block
        ("BODY a", True, True),
        ("TEXT a", True, True),
        ("NOT OR SEEN SUBJECT a", True, False),
        ("OR SEEN (1:2 BODY x)", True, True),
    ],
)
def test_plan(text: str, meta: bool, body: bool) -> None:
    plan = plan_search(criteria(text))
    assert (plan.needs_meta, plan.needs_body) == (meta, body)


def test_header_search_needs_only_the_meta() -> None:
    tree = criteria('SUBJECT "réunion"')
    view = View([20])
    assert matches(tree, 1, BOX.infos[3], BOX.metas[3], None, view)
    stored = MessageMeta.from_bytes(BOX.metas[3].to_bytes())
    assert matches(tree, 1, BOX.infos[3], stored, None, view)


def test_uncommon_header_needs_only_the_raw_message() -> None:
    tree = criteria("HEADER X-Other one")
    assert matches(tree, 3, BOX.infos[2], None, BOX.raws[2], View([15]))


def test_missing_data_is_a_caller_error() -> None:
    view = View([10])
    with pytest.raises(ValueError, match="meta"):
        matches(criteria("FROM gray"), 1, BOX.infos[0], None, BOX.raws[0], view)
    with pytest.raises(ValueError, match="raw"):
        matches(criteria("BODY joe"), 1, BOX.infos[0], BOX.metas[0], None, view)


def test_sequence_set_is_resolved_against_the_current_view() -> None:
    tree = criteria("*")
    info = BOX.infos[0]
    assert matches(tree, 1, info, None, None, View([10]))
    assert not matches(tree, 1, info, None, None, View([10, 11]))
