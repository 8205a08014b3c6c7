"""FETCH attributes: macros, sections, partials, BINARY, modifiers, and their response names."""

from __future__ import annotations

import pytest

from courriel.wire.imap import commands as c
from courriel.wire.imap.fetch import (
    MACROS,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    SectionText,
)

H, HF, HFN, T, M = (
    SectionText.HEADER,
    SectionText.HEADER_FIELDS,
    SectionText.HEADER_FIELDS_NOT,
    SectionText.TEXT,
    SectionText.MIME,
)

ATTRS: list[tuple[bytes, object, bytes | None]] = [
    (b"ENVELOPE", FetchItem.ENVELOPE, None),
    (b"flags", FetchItem.FLAGS, None),
    (b"INTERNALDATE", FetchItem.INTERNALDATE, None),
    (b"RFC822.SIZE", FetchItem.RFC822_SIZE, None),
    (b"RFC822", FetchItem.RFC822, None),
    (b"RFC822.HEADER", FetchItem.RFC822_HEADER, None),
    (b"RFC822.TEXT", FetchItem.RFC822_TEXT, None),
    (b"BODY", FetchItem.BODY, None),
    (b"BODYSTRUCTURE", FetchItem.BODYSTRUCTURE, None),
    (b"UID", FetchItem.UID, None),
    (b"MODSEQ", FetchItem.MODSEQ, None),
    (b"BODY[]", FetchBody(Section()), b"BODY[]"),
    (b"BODY.PEEK[]", FetchBody(Section(), peek=True), b"BODY[]"),
    (b"body[header]", FetchBody(Section(text=H)), b"BODY[HEADER]"),
    (b"BODY[TEXT]<0.2048>", FetchBody(Section(text=T), (0, 2048)), b"BODY[TEXT]<0>"),
    (b"BODY[1]", FetchBody(Section((1,))), b"BODY[1]"),
    (b"BODY[1.2.3]", FetchBody(Section((1, 2, 3))), b"BODY[1.2.3]"),
    (b"BODY[1.2.MIME]", FetchBody(Section((1, 2), M)), b"BODY[1.2.MIME]"),
    (b"BODY[3.HEADER]", FetchBody(Section((3,), H)), b"BODY[3.HEADER]"),
    (b"BODY[4.1.TEXT]", FetchBody(Section((4, 1), T)), b"BODY[4.1.TEXT]"),
    (
        b"BODY.PEEK[HEADER.FIELDS (From To Subject)]",
        FetchBody(Section((), HF, ("From", "To", "Subject")), peek=True),
        b"BODY[HEADER.FIELDS (From To Subject)]",
    ),
    (
        b'BODY[2.HEADER.FIELDS.NOT ("X-Spam" DATE)]<10.20>',
        FetchBody(Section((2,), HFN, ("X-Spam", "DATE")), (10, 20)),
        b"BODY[2.HEADER.FIELDS.NOT (X-Spam DATE)]<10>",
    ),
    (b"BINARY[]", FetchBody(Section(), binary=True), b"BINARY[]"),
    (b"BINARY.PEEK[1.2]<5.10>", FetchBody(Section((1, 2)), (5, 10), True, True), b"BINARY[1.2]<5>"),
    (b"BINARY.SIZE[1]", FetchBinarySize((1,)), b"BINARY.SIZE[1]"),
    (b"BINARY.SIZE[]", FetchBinarySize(()), b"BINARY.SIZE[]"),
]


@pytest.mark.parametrize(("text", "attr", "name"), ATTRS, ids=[a.decode() for a, _, _ in ATTRS])
def test_single_attribute_and_response_name(
    parse, text: bytes, attr: object, name: bytes | None
) -> None:
    cmd = parse(b"a1 FETCH 1 " + text)
    assert cmd == c.Fetch("a1", False, cmd.sequence_set, (attr,))
    if name is not None:
        assert attr.response_name() == name  # type: ignore[attr-defined]


def test_attribute_list(parse) -> None:
    cmd = parse(b"a1 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (DATE)] RFC822.SIZE)")
    assert cmd.attributes == (
        FetchItem.UID,
        FetchItem.FLAGS,
        FetchBody(Section((), HF, ("DATE",)), peek=True),
        FetchItem.RFC822_SIZE,
    )


@pytest.mark.parametrize("macro", ["ALL", "FAST", "FULL", "fast"])
def test_macros_expand(parse, macro: str) -> None:
    cmd = parse(b"a1 FETCH 1:2 " + macro.encode())
    assert cmd.attributes == MACROS[macro.upper()]


def test_macro_names_inside_a_list_are_not_macros(reply) -> None:
    assert reply(b"a1 FETCH 1 (ALL)") == b"a1 BAD Unknown fetch attribute ALL\r\n"


def test_changedsince_and_vanished(parse) -> None:
    cmd = parse(b"a1 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    assert (cmd.changedsince, cmd.vanished) == (12345, True)
    cmd = parse(b"a1 FETCH 1:* FLAGS (CHANGEDSINCE 0)")
    assert (cmd.changedsince, cmd.vanished) == (0, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"1 ()", b"a1 BAD Expected fetch attribute\r\n"),
        (b"1 FOO", b"a1 BAD Unknown fetch attribute FOO\r\n"),
        (b"1 BODY[FOO]", b"a1 BAD Invalid section FOO\r\n"),
        (b"1 BODY[MIME]", b"a1 BAD MIME must follow a part number\r\n"),
        (b"1 BODY[0]", b"a1 BAD Invalid part number in section\r\n"),
        (b"1 BODY[1..2]", b"a1 BAD Invalid section 1..2\r\n"),
        (b"1 BODY[HEADER.FIELDS]", b"a1 BAD Expected header field list\r\n"),
        (b"1 BODY[HEADER.FIELDS ()]", b"a1 BAD Expected header field name\r\n"),
        (b"1 BODY[TEXT]<0.0>", b"a1 BAD Expected partial length (non-zero)\r\n"),
        (b"1 BODY[TEXT]<5>", b"a1 BAD Expected '.' in partial\r\n"),
        # RFC 9051 §6.4.5: a partial always has its length, however large the origin
        (b"1 BODY[]<4294967296>", b"a1 BAD Expected '.' in partial\r\n"),
        (b"1 BODY[]<9223372036854775808.1>", b"a1 BAD Expected partial origin\r\n"),
        (b"1 BINARY[HEADER]", b"a1 BAD Invalid section HEADER\r\n"),
        (b"1 UID[1]", b"a1 BAD Unexpected section after UID\r\n"),
        (b"1 (FLAGS", b"a1 BAD Expected ')' to end fetch attributes\r\n"),
        (b"1 FLAGS (VANISHED)", b"a1 BAD VANISHED is only allowed with UID FETCH\r\n"),
        (b"1 FLAGS (FOO 1)", b"a1 BAD Unknown FETCH modifier FOO\r\n"),
        (b"0 FLAGS", b"a1 BAD Invalid number '0' in sequence set after FETCH\r\n"),
        (
            b"4294967296 FLAGS",
            b"a1 BAD Number 4294967296 is out of range in sequence set after FETCH\r\n",
        ),
    ],
)
def test_malformed_fetch(reply, text: bytes, message: bytes) -> None:
    assert reply(b"a1 FETCH " + text) == message


def test_vanished_needs_changedsince(reply) -> None:
    assert (
        reply(b"a1 UID FETCH 1:* FLAGS (VANISHED)") == b"a1 BAD VANISHED requires CHANGEDSINCE\r\n"
    )


def test_repeated_fetch_reuses_the_parse_and_errors_are_not_cached(parse, reply) -> None:
    first = parse(b"a1 UID FETCH 1 (FLAGS UID) (CHANGEDSINCE 7 VANISHED)")
    second = parse(b"a2 UID FETCH 2:3 (FLAGS UID) (CHANGEDSINCE 7 VANISHED)")
    assert second.attributes == first.attributes == (FetchItem.FLAGS, FetchItem.UID)
    assert (second.tag, second.changedsince, second.vanished) == ("a2", 7, True)
    assert second.sequence_set.to_bytes() == b"2:3"
    # the same text after a non-UID FETCH is still an error
    assert reply(b"a3 FETCH 1 (FLAGS UID) (CHANGEDSINCE 7 VANISHED)") == (
        b"a3 BAD VANISHED is only allowed with UID FETCH\r\n"
    )
    assert reply(b"a4 FETCH 1 (FLAGS UID) x") == b"a4 BAD Expected '(' to start FETCH modifiers\r\n"
