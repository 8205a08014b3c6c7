"""The corpus generator: reproducible, realistic, within its size bounds."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from bench.corpus import MAX_SIZE, MIN_SIZE, Corpus, Kind, message_id

from courriel.mail.message import MessageMeta, parse


def test_the_same_seed_gives_the_same_bytes() -> None:
    a, b = Corpus(7), Corpus(7)
    assert [m.raw for m in a.messages(30)] == [m.raw for m in b.messages(30)]
    assert a.get(12, size=65536).raw == b.get(12, size=65536).raw


def test_another_seed_gives_other_messages() -> None:
    assert Corpus(7).get(3).raw != Corpus(8).get(3).raw


def test_a_message_does_not_depend_on_which_were_made_before() -> None:
    c = Corpus(11)
    alone = c.get(40).raw
    c.messages(40)
    assert c.get(40).raw == alone


def test_natural_sizes_stay_within_bounds_and_are_mostly_small() -> None:
    c = Corpus()
    sizes = [c.size_of(i) for i in range(2000)]
    assert min(sizes) >= MIN_SIZE
    assert max(sizes) <= MAX_SIZE
    assert sorted(sizes)[len(sizes) // 2] < 32 * 1024  # the median message is small
    assert max(sizes) > 256 * 1024  # and a few are large


@pytest.mark.parametrize("size", [2048, 4096, 65536, 1 << 20])
def test_a_chosen_size_is_met_within_one_percent(size: int) -> None:
    c = Corpus()
    for i in range(8):
        assert abs(len(c.get(i, size=size).raw) - size) <= size // 100 + 64


def test_every_kind_appears() -> None:
    c = Corpus()
    kinds = {c.kind_of(i) for i in range(200)}
    assert kinds == set(Kind)


def test_lines_end_in_crlf_and_fit_rfc5322_limits() -> None:
    for m in Corpus().messages(60):
        assert b"\n" not in m.raw.replace(b"\r\n", b"")
        assert b"\r" not in m.raw.replace(b"\r\n", b"")
        assert max(len(ln) for ln in m.raw.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1


def test_headers_are_ascii_with_rfc2047_words_for_other_text() -> None:
    c = Corpus()
    encoded = 0
    for m in c.messages(80):
        head = m.raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()
        parsed = email.message_from_bytes(m.raw, policy=email.policy.default)
        assert str(parsed["Subject"]) == m.subject
        encoded += b"=?utf-8?" in head
    assert encoded > 10


def test_multipart_kinds_have_their_structure() -> None:
    c = Corpus()
    seen: dict[Kind, str] = {}
    for i in range(100):
        m = c.get(i)
        parsed = email.message_from_bytes(m.raw, policy=email.policy.default)
        seen.setdefault(m.kind, parsed.get_content_type())
        if m.kind is Kind.ATTACHMENT:
            names = [p.get_filename() or "" for p in parsed.iter_attachments()]
            assert names and names[0].endswith(".pdf")
    assert seen[Kind.ALTERNATIVE] == "multipart/alternative"
    assert seen[Kind.ATTACHMENT] == "multipart/mixed"
    assert seen[Kind.PLAIN] == "text/plain"


def test_replies_point_at_earlier_messages_of_the_corpus() -> None:
    c = Corpus(5)
    replies = [c.get(i) for i in range(60) if c.kind_of(i) is Kind.REPLY]
    assert replies
    for m in replies:
        parent = re.search(rb"In-Reply-To: <(\d+)\.5@", m.raw)
        assert parent is not None
        assert int(parent.group(1)) < m.index
        assert m.subject.startswith("Re: ")
        assert message_id(5, int(parent.group(1))).encode() in m.raw


def test_courriel_parses_every_kind() -> None:
    c = Corpus()
    for i in range(40):
        m = c.get(i)
        meta = parse(m.raw)
        assert MessageMeta.from_bytes(meta.to_bytes()).size == len(m.raw)
