"""Parser for FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516, RFC 7162 §3.1.4 and §3.2.6).

Theory of operation
-------------------
``FETCH set (att att ...) [(modifiers)]`` or a single attribute or a macro. An attribute name
is read as ``[A-Za-z0-9.]+`` (not as an atom: ``[`` is an atom character, and would swallow the
section), then a ``[section]`` and ``<partial>`` where the attribute takes them. The section
spec is split at dots into the part path (``1.2.3``) and the text specifier (``HEADER``,
``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``, ``MIME``).

Clients repeat the same attribute list for every FETCH they send, so the parsed attributes and
modifiers are kept in a small cache keyed by their exact bytes: a repeated FETCH costs one dict
lookup instead of a walk over the grammar. Only successful parses are cached, and the records
are immutable, so sharing them between connections is safe.
"""

from __future__ import annotations

import re

from courriel.wire.errors import ProtocolError
from courriel.wire.imap.commands import Fetch
from courriel.wire.imap.fetch import (
    MACROS,
    FetchAttribute,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    SectionText,
)
from courriel.wire.imap.lexer import Limits, Reader
from courriel.wire.imap.parse_search import partial_range

_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_RE = re.compile(rb"[A-Za-z0-9.]*")
_SIMPLE = {item.value: item for item in FetchItem}
_TEXTS = {t.value: t for t in SectionText}
_CACHE_SIZE = 512
_CACHE_KEY_MAX = 512
_Parsed = tuple[tuple[FetchAttribute, ...], int | None, bool, tuple[int, int] | None]
_cache: dict[tuple[bytes, bool], _Parsed] = {}


def _part(r: Reader, pieces: list[bytes]) -> tuple[int, ...]:
    part: list[int] = []
    for piece in pieces:
        # RFC 9051 §9 section-part: nz-number *("." nz-number)
        if not piece.isdigit() or piece[0] == 0x30 or len(piece) > 10:
            r.fail("Invalid part number in section")
        part.append(int(piece))
    return tuple(part)


def _header_list(r: Reader) -> tuple[str, ...]:
    r.sp("header field list")
    r.open_paren("'(' to start the header field list")
    fields = [r.astring_text("header field name")]
    while r.maybe_sp():
        fields.append(r.astring_text("header field name"))
    r.close_paren("')' to end the header field list")
    return tuple(fields)


def _section(r: Reader, *, binary: bool) -> Section:
    r.char(0x5B, "'[' to start the section")
    token = r.match(_SECTION_RE) or b""
    pieces = token.split(b".") if token else []
    n = 0
    while n < len(pieces) and pieces[n][:1].isdigit():
        n += 1
    part = _part(r, pieces[:n])
    spec = b".".join(pieces[n:]).decode("ascii").upper()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()
    if spec:
        text = _TEXTS.get(spec)
        if text is None or binary:
            r.fail(f"Invalid section {token.decode('ascii')}")
        if text is SectionText.MIME and not part:
            r.fail("MIME must follow a part number")  # RFC 9051 §6.4.5
        if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            fields = _header_list(r)
    r.char(0x5D, "']' to end the section")
    return Section(part, text, fields)


def parse_section(text: bytes) -> Section | None:
    """A section spec alone (``1.2.MIME``, ``HEADER.FIELDS (From)``), as an IMAP URL carries
    it (RFC 5092 §6: the section of FETCH BODY[...]); None if it is not one."""
    r = Reader([b"[" + text + b"]"], [], "*", Limits(), False)
    try:
        section = _section(r, binary=False)
        r.end()
    except ProtocolError:
        return None
    return section


def _partial(r: Reader) -> tuple[int, int] | None:
    if not r.maybe_char(0x3C):
        return None
    origin = r.number("partial origin", bits=64)
    r.char(0x2E, "'.' in partial")
    length = r.number("partial length", bits=64, nonzero=True)  # RFC 9051 §9 nz-number64
    r.char(0x3E, "'>' to end the partial")
    return origin, length


def _attribute(r: Reader) -> FetchAttribute:
    token = r.match(_NAME_RE)
    if token is None:
        r.fail("Expected fetch attribute")
    name = token.decode("ascii").upper()
    if r.peek() == 0x5B:
        if name in ("BODY", "BODY.PEEK"):
            section = _section(r, binary=False)
            return FetchBody(section, _partial(r), peek=name == "BODY.PEEK")
        if name in ("BINARY", "BINARY.PEEK"):  # RFC 3516 §4.2
            section = _section(r, binary=True)
            return FetchBody(section, _partial(r), peek=name == "BINARY.PEEK", binary=True)
        if name == "BINARY.SIZE":
            return FetchBinarySize(_section(r, binary=True).part)
        r.fail(f"Unexpected section after {name}")
    item = _SIMPLE.get(name)
    if item is None:
        r.fail(f"Unknown fetch attribute {name}")
    save = r.pos
    if item is FetchItem.PREVIEW and r.maybe_sp() and r.peek() != 0x28:
        r.seek(save)  # no modifiers: the space was the next attribute's
    elif r.pos != save:
        r.open_paren("'(' to start PREVIEW modifiers")
        if r.keyword("PREVIEW modifier") != "LAZY":  # RFC 8970 §3.2: LAZY is the only one
            r.fail("Unknown PREVIEW modifier")
        r.close_paren("')' to end PREVIEW modifiers")
    return item


def _attributes(r: Reader) -> tuple[FetchAttribute, ...]:
    if r.peek() == 0x28:
        r.open_paren("'(' to start fetch attributes")
        attrs = [_attribute(r)]
        while r.maybe_sp():
            attrs.append(_attribute(r))
        r.close_paren("')' to end fetch attributes")
        return tuple(attrs)
    save = r.pos
    token = r.match(_NAME_RE)
    macro = MACROS.get(token.decode("ascii").upper()) if token else None
    if macro is not None and r.peek() in (-1, 0x20):
        return macro
    r.seek(save)
    return (_attribute(r),)


def _modifiers(r: Reader, uid: bool) -> tuple[int | None, bool, tuple[int, int] | None]:
    changedsince: int | None = None
    vanished = False
    partial: tuple[int, int] | None = None
    r.open_paren("'(' to start FETCH modifiers")
    while True:
        name = r.keyword("FETCH modifier")
        if name == "CHANGEDSINCE":  # RFC 7162 §3.1.4.1
            r.sp("mod-sequence after CHANGEDSINCE")
            changedsince = r.number("mod-sequence after CHANGEDSINCE", bits=64)
        elif name == "VANISHED":  # RFC 7162 §3.2.6
            vanished = True
        elif name == "PARTIAL" and partial is None:  # RFC 9394 §4
            partial = partial_range(r)
        else:
            r.fail(f"Unknown FETCH modifier {name}")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end FETCH modifiers")
    if vanished and not uid:
        r.fail("VANISHED is only allowed with UID FETCH")  # RFC 7162 §3.2.6
    if vanished and changedsince is None:
        r.fail("VANISHED requires CHANGEDSINCE")  # RFC 7162 §3.2.6
    if partial is not None and not uid:
        r.fail("PARTIAL is only allowed with UID FETCH")  # RFC 9394 §4
    return changedsince, vanished, partial


def parse_fetch(r: Reader, uid: bool) -> Fetch:
    r.sp("sequence set after FETCH")
    sequence_set = r.sequence_set("sequence set after FETCH")
    r.sp("fetch attributes after the sequence set")
    rest = r.rest()
    key = (rest, uid) if rest is not None and len(rest) <= _CACHE_KEY_MAX else None
    hit = _cache.get(key) if key is not None else None
    if hit is not None:
        r.skip_rest()
        return Fetch(r.tag, uid, sequence_set, *hit)
    attrs = _attributes(r)
    changedsince, vanished, partial = _modifiers(r, uid) if r.maybe_sp() else (None, False, None)
    if key is not None and r.at_end():
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = (attrs, changedsince, vanished, partial)
    return Fetch(r.tag, uid, sequence_set, attrs, changedsince, vanished, partial)


# Fetch attributes where other commands take them (RFC 5465 §8: NOTIFY's MessageNew).
parse_fetch_attributes = _attributes
