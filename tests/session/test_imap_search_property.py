"""Property: ``matches`` answers True or False for any search tree over any parsed message,
and NOT is always the negation of the key it wraps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mail.message import parse
from courriel.session.imap.search import matches, plan_search
from courriel.store.base import MessageExtras, MessageInfo
from courriel.wire.imap.search import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
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

# Pieces that steer the parser into its interesting paths: MIME structure, encodings, words.
FRAGMENTS = [
    b"From: =?utf-8?b?w6k=?= <a@b>\r\n",
    b"Subject: =?iso-8859-1?q?caf=E9?=\r\n",
    b"Subject: =?x-unknown?q?abc?=\r\n",
    b"Date: Mon, 1 Jan 2024 23:30:00 -0500\r\n",
    b"Date: garbage\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=utf-16\r\n",
    b"Content-Type: text/html; charset=nonsense\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-weird\r\n",
    b"\r\n",
    b"\n",
    b"--x\r\n",
    b"--x--\r\n",
    b" folded\r\n",
    b"=E9=\r\n",
    b"w6k=\r\n",
    b"\x00\xff\xfe",
]

messages = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=12)), max_size=25).map(
    b"".join
)

texts = st.text(max_size=6)
sequence_sets = st.one_of(
    st.just(SequenceSet(saved=True)),
    st.lists(st.tuples(st.integers(STAR, 30), st.integers(STAR, 30)), min_size=1, max_size=3).map(
        lambda r: SequenceSet(tuple(r))
    ),
)
leaves: st.SearchStrategy[SearchKey] = st.one_of(
    st.just(SearchAll()),
    st.builds(SearchFlag, st.sampled_from(["\\Seen", "\\Deleted", "$x", "Junk"]), st.booleans()),
    st.builds(SearchRecent, st.booleans()),
    st.builds(
        SearchHeader,
        st.sampled_from(["from", "to", "cc", "bcc", "subject", "date", "x-other", "received"]),
        texts,
    ),
    st.builds(SearchBody, texts),
    st.builds(SearchText, texts),
    st.builds(SearchDate, st.sampled_from(DateField), st.sampled_from(DateOp), st.dates()),
    st.builds(SearchSize, st.booleans(), st.integers(0, 2**63)),
    st.builds(SearchSequence, sequence_sets),
    st.builds(SearchUid, sequence_sets),
    st.builds(SearchModSeq, st.integers(0, 2**63)),
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(SearchNot, inner),
        st.builds(SearchOr, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: SearchAnd(tuple(ks))),
    ),
    max_leaves=8,
)


@dataclass
class View:
    max_seq: int
    max_uid: int
    saved: frozenset[int]

    def seq_of(self, uid: int) -> int | None:
        return None

    def uid_of(self, seq: int) -> int:
        return seq


@settings(max_examples=200, deadline=None)
@given(
    tree=trees,
    raw=messages,
    flags=st.frozensets(st.sampled_from(["\\Seen", "\\Deleted", "$X", "junk"])),
    seq=st.integers(1, 20),
    uid=st.integers(1, 40),
    recent=st.booleans(),
)
def test_matches_is_total_and_not_negates(
    tree: SearchKey, raw: bytes, flags: frozenset[str], seq: int, uid: int, recent: bool
) -> None:
    meta = parse(raw)
    info = MessageInfo(uid, 7, flags, datetime(2024, 1, 2, 3, 4, tzinfo=UTC), len(raw))
    view = View(max_seq=20, max_uid=40, saved=frozenset({uid, 3}))
    plan = plan_search(tree)
    # SAVED* dates and object ids read the store's extras for the message
    extras = MessageExtras("ab12", datetime(2024, 1, 3, tzinfo=UTC), None, None)
    result = matches(
        tree,
        seq,
        info,
        meta if plan.needs_meta else None,
        raw if plan.needs_body else None,
        view,
        recent=recent,
        extras=extras if plan.needs_extras else None,
    )
    assert isinstance(result, bool)
    negated = matches(SearchNot(tree), seq, info, meta, raw, view, recent=recent, extras=extras)
    assert negated is not result
