"""Properties of parse() over arbitrary and MIME-shaped bytes."""

from __future__ import annotations

import mail_imapread as imapread
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mail import envelope
from courriel.mail.message import (
    MessageMeta,
    Part,
    PartKind,
    SectionSpec,
    SectionText,
    UnknownTransferEncoding,
    decoded_part,
    find_part,
    parse,
    section_bytes,
)

_FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"--b",
    b"--b--",
    b"--c",
    b"--",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b'Content-Type: multipart/alternative; boundary="c"\n',
    b"Content-Type: multipart/digest; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=utf-8; name*0=a; name*1*=%41\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Transfer-Encoding: x-unknown\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC\r\n",
    b"Content-Language: en, (c) fr\r\n",
    b"From: A <a@b.example>, (c) x@y\r\n",
    b"To: g: x@y, <@r:z@w>;\r\n",
    b"Cc: ;:<>@,.\r\n",
    b"Subject: =?utf-8?q?caf=C3=A9?= =?bad?x?y?=\r\n",
    b"Subject: =?base64?q?x?= =?idna?b?QQ==?=\r\n",
    b"Content-Type: text/plain; charset=zlib\r\n",
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n",
    b'"quoted \\" string"',
    b"(comment (nested)",
    b"=?utf-8?b?QQ==?=",
    b"YWJj=",
    b"=3D=\r\n",
    b"\x00",
    b"\xff\xfe",
    "é".encode(),
]

_HEADER_LINES = [f for f in _FRAGMENTS if f.endswith(b"\n") and b":" in f]
_BODY_BITS = st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=8))

_leaf = st.tuples(
    st.lists(st.sampled_from(_HEADER_LINES), max_size=3), st.lists(_BODY_BITS, max_size=5)
).map(lambda t: b"".join(t[0]) + b"\r\n" + b"".join(t[1]))


def _multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    def build(t: tuple[bytes, bytes, list[bytes], bool]) -> bytes:
        boundary, subtype, kids, closed = t
        head = b"Content-Type: multipart/%s; boundary=%s\r\n\r\npreamble\r\n" % (subtype, boundary)
        parts = b"".join(b"--%s\r\n%s\r\n" % (boundary, kid) for kid in kids)
        return head + parts + (b"--%s--\r\nepilogue" % boundary if closed else b"")

    return st.tuples(
        st.sampled_from([b"b", b"c", b"bb"]),
        st.sampled_from([b"mixed", b"digest", b"alternative"]),
        st.lists(children, max_size=4),
        st.booleans(),
    ).map(build)


def _message(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return children.map(lambda kid: b"Content-Type: message/rfc822\r\n\r\n" + kid)


def _mutate(t: tuple[bytes, list[tuple[int, bytes]], bool]) -> bytes:
    raw, inserts, bare_lf = t
    for pos, fragment in inserts:
        at = pos % (len(raw) + 1)
        raw = raw[:at] + fragment + raw[at:]
    return raw.replace(b"\r\n", b"\n") if bare_lf else raw


_structured = st.recursive(
    _leaf, lambda kids: st.one_of(_multipart(kids), _message(kids)), max_leaves=12
)
mime_ish = st.tuples(
    _structured,
    st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(_FRAGMENTS)), max_size=3),
    st.booleans(),
).map(_mutate)


def _walk(part: Part) -> list[Part]:
    return [part, *(p for c in part.children for p in _walk(c))]


def _check_offsets(raw: bytes, meta: MessageMeta) -> None:
    assert meta.size == len(raw)
    assert meta.header_size == meta.root.body_start
    assert meta.root.header_start == 0 and meta.root.body_end == len(raw)
    for part in _walk(meta.root):
        assert 0 <= part.header_start <= part.body_start <= part.body_end <= len(raw)
        previous_end = part.body_start
        for child in part.children:
            assert previous_end <= child.header_start
            assert child.body_end <= part.body_end
            previous_end = child.body_end
        if part.kind is PartKind.MESSAGE:
            assert len(part.children) == 1


def _check_encodings(meta: MessageMeta) -> None:
    envelope = imapread.read(meta.envelope)
    assert isinstance(envelope, list) and len(envelope) == 10
    for encoded in (meta.bodystructure, meta.body):
        assert isinstance(imapread.read(encoded), list)


def _check_sections(raw: bytes, meta: MessageMeta) -> None:
    for part in _walk(meta.root):
        for text in (SectionText.ALL, SectionText.MIME, SectionText.HEADER, SectionText.TEXT):
            got = section_bytes(raw, meta, SectionSpec(part.section, text))
            assert got is None or got in raw or got == b""
        if part.kind is PartKind.LEAF and part.section:
            assert find_part(meta, part.section) is part  # a leaf's number names it
        try:
            decoded = decoded_part(raw, meta, part.section)
        except UnknownTransferEncoding:
            continue
        node = find_part(meta, part.section)
        assert node is not None and decoded is not None
        if part.section and node.kind is PartKind.LEAF:
            assert node.binary_size == len(decoded)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    meta = parse(raw)
    _check_offsets(raw, meta)
    _check_encodings(meta)
    assert MessageMeta.from_bytes(meta.to_bytes()) == meta


@settings(max_examples=500, deadline=None)
@given(mime_ish)
def test_parse_mime_shaped_bytes(raw: bytes) -> None:
    meta = parse(raw)
    _check_offsets(raw, meta)
    _check_encodings(meta)
    _check_sections(raw, meta)
    assert MessageMeta.from_bytes(meta.to_bytes()) == meta


@settings(max_examples=200, deadline=None)
@given(mime_ish)
def test_bare_lf_and_crlf_give_the_same_shape(raw: bytes) -> None:
    """Line ends change sizes, never the tree: the same parts, types and encodings."""
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", b"\r\n")
    lf = crlf.replace(b"\r\n", b"\n")
    shape_a = [(p.section, p.kind, p.media_type, p.encoding) for p in _walk(parse(crlf).root)]
    shape_b = [(p.section, p.kind, p.media_type, p.encoding) for p in _walk(parse(lf).root)]
    assert shape_a == shape_b


_atom = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)
_dot_atom = st.lists(_atom, min_size=1, max_size=3).map(".".join)
_name = st.one_of(
    st.just(""),
    st.lists(_atom, min_size=1, max_size=3).map(" ".join),
    st.text("ab ,<>@;:.\t", max_size=8).map(lambda t: '"' + t + '"'),
)
_element = st.one_of(
    st.tuples(_dot_atom, _dot_atom).map("@".join),
    st.tuples(_name, _dot_atom, _dot_atom).map(lambda t: f"{t[0]} <{t[1]}@{t[2]}>"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_element, min_size=1, max_size=5), st.sampled_from([",", ", ", " ,\t"]))
def test_simple_address_path_agrees_with_tokenizer(elements: list[str], sep: str) -> None:
    """The one-regex path for simple addresses reads them as the full tokenizer does."""
    text = sep.join(elements)
    assert envelope.parse_addresses(text.encode("latin-1")) == envelope._parse_tokens(
        envelope._tokens(text)
    )
