"""Property: any FETCH over any parsed message renders one well-framed response (or raises
``UnknownCte`` for BINARY), given only the data its plan asked for."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mail.message import parse
from courriel.session.imap.fetch import UnknownCte, plan_fetch, render_fetch
from courriel.store.base import MessageInfo
from courriel.wire.imap import responses
from courriel.wire.imap.fetch import (
    FetchAttribute,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    SectionText,
)

FRAGMENTS = [
    b"Subject: =?utf-8?b?w6k=?=\r\n",
    b"From: a@b\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-weird\r\n",
    b"\r\n",
    b"\n",
    b"--x\r\n",
    b"--x--\r\n",
    b"AAEC\r\n",
    b"=00=\r\n",
    b"\x00",
]
messages = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=10)), max_size=25).map(
    b"".join
)
parts = st.lists(st.integers(1, 4), max_size=3).map(tuple)
texts = st.sampled_from([None, *SectionText])
sections = st.builds(
    Section,
    parts,
    texts,
    st.lists(st.sampled_from(["From", "subject", "X"]), max_size=2).map(tuple),
)
partials = st.none() | st.tuples(st.integers(0, 300), st.integers(0, 300))
attributes: st.SearchStrategy[FetchAttribute] = st.one_of(
    st.sampled_from(FetchItem),
    st.builds(FetchBody, sections, partials, st.booleans(), st.just(False)),
    st.builds(
        lambda p, part, peek: FetchBody(Section(p), part, peek, True),
        parts,
        partials,
        st.booleans(),
    ),
    st.builds(FetchBinarySize, parts),
)
_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n")


def _split(data: bytes) -> tuple[bytes, list[tuple[bool, bytes]]]:
    """The response outside its literals, and each literal as (is literal8, data).

    Each literal's length is checked on the way: the next search starts after its data.
    """
    outside: list[bytes] = []
    literals: list[tuple[bool, bytes]] = []
    pos = 0
    while (m := _LITERAL.search(data, pos)) is not None:
        outside.append(data[pos : m.start()])
        pos = m.end() + int(m.group(1))
        assert pos <= len(data)
        literals.append((m.group(0).startswith(b"~"), data[m.end() : pos]))
    outside.append(data[pos:])
    return b"".join(outside), literals


@settings(max_examples=200, deadline=None)
@given(
    raw=messages,
    attrs=st.lists(attributes, min_size=1, max_size=5),
    uid=st.booleans(),
    condstore=st.booleans(),
)
def test_render_is_well_framed(
    raw: bytes, attrs: list[FetchAttribute], uid: bool, condstore: bool
) -> None:
    meta = parse(raw)
    plan = plan_fetch(attrs, uid=uid, condstore=condstore)
    info = MessageInfo(5, 9, frozenset({"\\Seen"}), datetime(2024, 1, 1, tzinfo=UTC), len(raw))
    extras = {  # what imap_objects renders from the store; a non-ASCII preview is a literal
        FetchItem.SAVEDATE: responses.item_savedate(None),
        FetchItem.EMAILID: responses.item_objectid(b"EMAILID", "Eab12"),
        FetchItem.THREADID: responses.item_objectid(b"THREADID", None),
        FetchItem.PREVIEW: responses.item_preview("pr\u00e9view {3}\r\nx"),
    }
    try:
        out = render_fetch(
            2,
            info,
            plan,
            meta if plan.needs_meta else None,
            raw if plan.needs_body else None,
            utf8=False,
            extras={k: v for k, v in extras.items() if k in plan.extras},
        )
    except UnknownCte as exc:
        assert any(isinstance(a, FetchBody | FetchBinarySize) for a in attrs)
        assert exc.part
        return
    assert out.startswith(b"* 2 FETCH (")
    assert out.endswith(b")\r\n")
    # Outside literals a response is one line, and a plain literal never carries NUL.
    outside, literals = _split(out)
    assert b"\n" not in outside[:-2]
    assert all(b"\x00" not in data for is8, data in literals if not is8)
