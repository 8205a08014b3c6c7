"""FETCH responses for real messages: every item with its exact bytes (RFC 9051 §6.4.5, §7.5.2)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from courriel.mail.message import MessageMeta, parse
from courriel.session.imap.fetch import UnknownCte, _RowFetch, plan_fetch, render_fetch
from courriel.store.base import MessageInfo
from courriel.testing.imap import fetch_attributes
from courriel.wire.imap.fetch import FetchBody, FetchItem, Section

MESSAGES = Path(__file__).parent / "messages"


def load(name: str, *, crlf: bool = True) -> bytes:
    data = (MESSAGES / name).read_bytes()
    return data.replace(b"\n", b"\r\n") if crlf else data


def info_for(raw: bytes, **kw: object) -> MessageInfo:
    values: dict[str, object] = {
        "uid": 7,
        "modseq": 42,
        "flags": frozenset(),
        "internal_date": datetime(2024, 1, 2, 4, 30, tzinfo=UTC),
        "size": len(raw),
    }
    values.update(kw)
    return MessageInfo(**values)  # type: ignore[arg-type]


def fetch(
    raw: bytes,
    text: bytes,
    *,
    uid: bool = False,
    condstore: bool = False,
    meta: MessageMeta | None = None,
    **kw: object,
) -> bytes:
    plan = plan_fetch(fetch_attributes(text), uid=uid, condstore=condstore)
    return render_fetch(3, info_for(raw, **kw), plan, meta or parse(raw), raw, utf8=False)


def lit(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


SIMPLE = load("rfc9051-example.eml")
MIXED = load("mixed.eml")
FOLDED = load("folded.eml")
SIMPLE_HEADER_END = SIMPLE.index(b"\r\n\r\n") + 4
MIXED_HEADER_END = MIXED.index(b"\r\n\r\n") + 4


# --- fixed items ----------------------------------------------------------------------------------


def test_envelope_matches_the_rfc_9051_example() -> None:
    # RFC 9051 §7.5.2 (ENVELOPE), the example message of §6.4.5
    expected = (
        b'* 3 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        b'"IMAP4rev2 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>"))\r\n'
    )
    assert fetch(SIMPLE, b"ENVELOPE") == expected


def test_body_and_bodystructure_have_the_rfc_shape() -> None:
    body_len = len(SIMPLE) - SIMPLE_HEADER_END
    basic = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" %d 1' % body_len
    assert fetch(SIMPLE, b"BODY") == b"* 3 FETCH (BODY " + basic + b"))\r\n"
    # BODYSTRUCTURE adds md5, disposition, language and location (RFC 9051 §7.5.2)
    assert fetch(SIMPLE, b"BODYSTRUCTURE") == (
        b"* 3 FETCH (BODYSTRUCTURE " + basic + b" NIL NIL NIL NIL))\r\n"
    )


def test_multipart_bodystructure_lists_each_part_then_the_subtype() -> None:
    out = fetch(MIXED, b"BODY")
    assert out.startswith(b'* 3 FETCH (BODY (("text" "plain" ("charset" "iso-8859-1") NIL NIL ')
    assert out.endswith(b' "mixed"))\r\n')
    assert b'("message" "rfc822" NIL NIL NIL "7bit" ' in out


def test_flags_system_first_then_keywords_and_recent_only_when_asked() -> None:
    flags = frozenset({"Junk", "\\Seen", "$Label", "\\Answered"})
    assert fetch(SIMPLE, b"FLAGS", flags=flags) == (
        b"* 3 FETCH (FLAGS (\\Answered \\Seen $Label Junk))\r\n"
    )
    plan = plan_fetch(fetch_attributes(b"FLAGS"), uid=False, condstore=False)
    info = info_for(SIMPLE, flags=frozenset())
    assert render_fetch(1, info, plan, None, None, utf8=False, recent=True) == (
        b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    )
    assert render_fetch(1, info, plan, None, None, utf8=False) == b"* 1 FETCH (FLAGS ())\r\n"


def test_fast_items_need_neither_meta_nor_body() -> None:
    plan = plan_fetch(
        fetch_attributes(b"(UID RFC822.SIZE INTERNALDATE MODSEQ)"), uid=False, condstore=False
    )
    when = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))
    info = MessageInfo(
        uid=4827313, modseq=917162500, flags=frozenset(), internal_date=when, size=44827
    )
    assert render_fetch(12, info, plan, None, None, utf8=False) == (
        b"* 12 FETCH (UID 4827313 RFC822.SIZE 44827 "
        b'INTERNALDATE "17-Jul-1996 02:44:25 -0700" MODSEQ (917162500))\r\n'
    )


def test_internaldate_keeps_its_zone_and_pads_the_day() -> None:
    when = datetime(2024, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert fetch(SIMPLE, b"INTERNALDATE", internal_date=when) == (
        b'* 3 FETCH (INTERNALDATE "01-Jan-2024 23:30:00 +0530")\r\n'
    )


def test_items_come_in_request_order() -> None:
    out = fetch(SIMPLE, b"(RFC822.SIZE FLAGS UID)", flags=frozenset({"\\Flagged"}))
    assert out == b"* 3 FETCH (RFC822.SIZE %d FLAGS (\\Flagged) UID 7)\r\n" % len(SIMPLE)


# --- whole message and its halves -----------------------------------------------------------------


def test_rfc822_items() -> None:
    assert fetch(SIMPLE, b"RFC822.HEADER") == (
        b"* 3 FETCH (RFC822.HEADER " + lit(SIMPLE[:SIMPLE_HEADER_END]) + b")\r\n"
    )
    assert fetch(SIMPLE, b"RFC822.TEXT", flags=frozenset({"\\Seen"})) == (
        b"* 3 FETCH (RFC822.TEXT " + lit(SIMPLE[SIMPLE_HEADER_END:]) + b" FLAGS (\\Seen))\r\n"
    )


def test_rfc822_sets_seen_and_reports_flags() -> None:
    out = fetch(SIMPLE, b"RFC822", flags=frozenset({"\\Seen"}))
    assert out == b"* 3 FETCH (RFC822 " + lit(SIMPLE) + b" FLAGS (\\Seen))\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"BODY.PEEK[]", b"BODY[] " + lit(MIXED)),
        (b"BODY.PEEK[HEADER]", b"BODY[HEADER] " + lit(MIXED[:MIXED_HEADER_END])),
        (b"BODY.PEEK[TEXT]", b"BODY[TEXT] " + lit(MIXED[MIXED_HEADER_END:])),
        (
            b"BODY.PEEK[1]",
            b"BODY[1] " + lit(b"Un caf=E9 cr=E8me, s'il vous pla=EEt.=\r\n Merci."),
        ),
        (
            b"BODY.PEEK[1.MIME]",
            b"BODY[1.MIME] "
            + lit(
                b"Content-Type: text/plain; charset=iso-8859-1\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ),
        ),
        (b"BODY.PEEK[2]", b"BODY[2] " + lit(b"AAECAwBoZWxsbw==")),
        (
            b"BODY.PEEK[3]",
            b"BODY[3] "
            + lit(
                b"From: Carol <carol@example.test>\r\nSubject: inner note\r\n\r\n"
                b"Inner body with zebra."
            ),
        ),
        (
            b"BODY.PEEK[3.HEADER]",
            b"BODY[3.HEADER] "
            + lit(b"From: Carol <carol@example.test>\r\nSubject: inner note\r\n\r\n"),
        ),
        (b"BODY.PEEK[3.TEXT]", b"BODY[3.TEXT] " + lit(b"Inner body with zebra.")),
        (b"BODY.PEEK[3.1]", b"BODY[3.1] " + lit(b"Inner body with zebra.")),
        (
            b"BODY.PEEK[3.HEADER.FIELDS (subject)]",
            b"BODY[3.HEADER.FIELDS (subject)] " + lit(b"Subject: inner note\r\n\r\n"),
        ),
    ],
)
def test_sections_of_a_multipart_message(text: bytes, expected: bytes) -> None:
    assert fetch(MIXED, text) == b"* 3 FETCH (" + expected + b")\r\n"


@pytest.mark.parametrize(
    "text",
    [b"BODY.PEEK[9]", b"BODY.PEEK[1.HEADER]", b"BODY.PEEK[1.2]", b"BODY.PEEK[2.TEXT]"],
)
def test_missing_sections_are_empty_strings(text: bytes) -> None:
    # RFC 9051 §6.4.5 leaves this open; Dovecot answers an empty literal, and so do we.
    name = text.replace(b".PEEK", b"")
    assert fetch(MIXED, text) == b"* 3 FETCH (" + name + b" {0}\r\n)\r\n"


def test_header_fields_keep_folds_and_match_names_in_any_case() -> None:
    out = fetch(FOLDED, b"BODY.PEEK[HEADER.FIELDS (subject FROM)]")
    wanted = (
        b"fRoM: Dave <dave@example.test>\r\n"
        b"Subject: a very long\r\n\tsubject line\r\n"
        b"SUBJECT: second subject\r\n"
        b"\r\n"
    )
    assert out == b"* 3 FETCH (BODY[HEADER.FIELDS (subject FROM)] " + lit(wanted) + b")\r\n"


def test_header_fields_not_keeps_the_others() -> None:
    out = fetch(FOLDED, b"BODY.PEEK[HEADER.FIELDS.NOT (Subject X-Other)]")
    wanted = b"fRoM: Dave <dave@example.test>\r\nTo: x@example.test\r\nX-Empty:\r\n\r\n"
    assert out == b"* 3 FETCH (BODY[HEADER.FIELDS.NOT (Subject X-Other)] " + lit(wanted) + b")\r\n"


def test_header_fields_of_absent_names_is_the_empty_line() -> None:
    out = fetch(FOLDED, b"BODY.PEEK[HEADER.FIELDS (Received)]")
    assert out == b"* 3 FETCH (BODY[HEADER.FIELDS (Received)] {2}\r\n\r\n)\r\n"


def test_top_level_sections_from_raw_alone_equal_those_through_the_parse() -> None:
    for text in (b"BODY.PEEK[HEADER]", b"BODY.PEEK[TEXT]", b"BODY.PEEK[HEADER.FIELDS (To)]"):
        plan = plan_fetch(fetch_attributes(text), uid=False, condstore=False)
        assert not plan.needs_meta
        info = info_for(FOLDED)
        without = render_fetch(1, info, plan, None, FOLDED, utf8=False)
        assert without == fetch(FOLDED, text).replace(b"* 3 ", b"* 1 ")


def test_bare_lf_message_is_sent_as_stored() -> None:
    raw = load("folded.eml", crlf=False)
    header = raw[: raw.index(b"\n\n") + 2]
    assert fetch(raw, b"BODY.PEEK[HEADER]") == b"* 3 FETCH (BODY[HEADER] " + lit(header) + b")\r\n"
    assert fetch(raw, b"RFC822.SIZE") == b"* 3 FETCH (RFC822.SIZE %d)\r\n" % len(raw)


def test_nul_in_body_is_sent_as_0x80_keeping_the_size() -> None:
    raw = b"Subject: x\r\n\r\nab\x00cd\r\n"
    out = fetch(raw, b"BODY.PEEK[TEXT]")
    assert out == b"* 3 FETCH (BODY[TEXT] {7}\r\nab\x80cd\r\n)\r\n"


# --- partials -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partial", "data"),
    [
        (b"<0.6>", b"Un caf"),
        (b"<3.4>", b"caf="),
        (b"<40.1000>", b" Merci."),  # count past the end: up to the end
        (b"<47.1>", b""),  # origin exactly at the end
        (b"<4000.10>", b""),  # origin beyond the end: empty string (RFC 9051 §6.4.5)
    ],
)
def test_partial_body_sections(partial: bytes, data: bytes) -> None:
    origin = partial[1 : partial.index(b".")]
    out = fetch(MIXED, b"BODY.PEEK[1]" + partial)
    assert out == b"* 3 FETCH (BODY[1]<" + origin + b"> " + lit(data) + b")\r\n"


def test_partial_with_count_zero_is_empty() -> None:
    # The parser refuses <n.0> (RFC 9051 §9 nz-number); the renderer still gives "" for it.
    attr = FetchBody(Section(), (0, 0), peek=True)
    plan = plan_fetch([attr], uid=False, condstore=False)
    out = render_fetch(1, info_for(SIMPLE), plan, None, SIMPLE, utf8=False)
    assert out == b"* 1 FETCH (BODY[]<0> {0}\r\n)\r\n"


def test_partial_of_the_whole_message() -> None:
    out = fetch(SIMPLE, b"BODY.PEEK[]<%d.100>" % (len(SIMPLE) - 3))
    assert out == b"* 3 FETCH (BODY[]<%d> {3}\r\n?\r\n)\r\n" % (len(SIMPLE) - 3)


# --- BINARY ---------------------------------------------------------------------------------------


def test_binary_of_quoted_printable_is_decoded() -> None:
    data = b"Un caf\xe9 cr\xe8me, s'il vous pla\xeet. Merci."
    assert fetch(MIXED, b"BINARY.PEEK[1]") == b"* 3 FETCH (BINARY[1] " + lit(data) + b")\r\n"


def test_binary_with_nul_is_a_literal8() -> None:
    data = b"\x00\x01\x02\x03\x00hello"
    # RFC 3516 §4.2: ~{n} when the decoded content holds NUL
    assert fetch(MIXED, b"BINARY.PEEK[2]") == b"* 3 FETCH (BINARY[2] ~{10}\r\n" + data + b")\r\n"


def test_binary_of_base64_text_and_its_partial() -> None:
    html = "<p>Grüße aus Köln</p>".encode()
    assert fetch(MIXED, b"BINARY.PEEK[5]") == b"* 3 FETCH (BINARY[5] " + lit(html) + b")\r\n"
    assert fetch(MIXED, b"BINARY.PEEK[5]<3.5>") == (
        b"* 3 FETCH (BINARY[5]<3> " + lit(html[3:8]) + b")\r\n"
    )


def test_binary_size() -> None:
    out = fetch(MIXED, b"(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[5] BINARY.SIZE[9])")
    html = "<p>Grüße aus Köln</p>".encode()
    assert (
        out
        == b"* 3 FETCH (BINARY.SIZE[1] 38 BINARY.SIZE[2] 10 BINARY.SIZE[5] %d " % len(html)
        + b"BINARY.SIZE[9] 0)\r\n"
    )


def test_binary_size_of_the_whole_message_needs_nothing_but_the_row() -> None:
    plan = plan_fetch(fetch_attributes(b"BINARY.SIZE[]"), uid=False, condstore=False)
    assert not plan.needs_meta and not plan.needs_body
    out = render_fetch(1, info_for(MIXED), plan, None, None, utf8=False)
    assert out == b"* 1 FETCH (BINARY.SIZE[] %d)\r\n" % len(MIXED)


@pytest.mark.parametrize("text", [b"BINARY.PEEK[4]", b"BINARY.SIZE[4]"])
def test_unknown_transfer_encoding_raises_unknown_cte(text: bytes) -> None:
    with pytest.raises(UnknownCte) as caught:
        fetch(MIXED, text)
    assert caught.value.encoding == "x-uuencode"
    assert caught.value.part == (4,)


def test_binary_of_a_missing_part_is_empty() -> None:
    assert fetch(MIXED, b"BINARY.PEEK[7]") == b"* 3 FETCH (BINARY[7] {0}\r\n)\r\n"


def test_binary_of_the_whole_message_is_unchanged() -> None:
    assert fetch(SIMPLE, b"BINARY.PEEK[]") == b"* 3 FETCH (BINARY[] " + lit(SIMPLE) + b")\r\n"


# --- missing inputs -------------------------------------------------------------------------------


def test_missing_meta_or_body_is_a_caller_error() -> None:
    plan = plan_fetch(fetch_attributes(b"ENVELOPE"), uid=False, condstore=False)
    with pytest.raises(ValueError, match="meta"):
        render_fetch(1, info_for(SIMPLE), plan, None, SIMPLE, utf8=False)
    plan = plan_fetch(fetch_attributes(b"BODY.PEEK[]"), uid=False, condstore=False)
    with pytest.raises(ValueError, match="raw message"):
        render_fetch(1, info_for(SIMPLE), plan, parse(SIMPLE), None, utf8=False)


def test_meta_read_back_from_storage_renders_the_same() -> None:
    stored = MessageMeta.from_bytes(parse(MIXED).to_bytes())
    text = b"(ENVELOPE BODYSTRUCTURE BODY.PEEK[3.HEADER] BINARY.PEEK[1])"
    assert fetch(MIXED, text, meta=stored) == fetch(MIXED, text)


# --- the row-only fast path (FETCH 1:* (FLAGS UID)) gives the bytes render_fetch gives ---------


@pytest.mark.parametrize("uidonly", [False, True])
@pytest.mark.parametrize("recent", [False, True])
def test_row_fetch_matches_render_fetch(uidonly: bool, recent: bool) -> None:
    row_items = (FetchItem.UID, FetchItem.FLAGS, FetchItem.MODSEQ, FetchItem.RFC822_SIZE)
    flag_sets = [frozenset(), frozenset({"\\Seen"}), frozenset({"$Junk", "\\Flagged", "\\Seen"})]
    checked = 0
    for n in range(1, len(row_items) + 1):
        for attributes in itertools.permutations(row_items, n):
            plan = plan_fetch(
                attributes, uid=False, condstore=False, read_only=True, uidonly=uidonly
            )
            assert _RowFetch.applies(plan)
            for flags in flag_sets:
                info = MessageInfo(7, 42, flags, datetime(2024, 1, 2, tzinfo=UTC), 1234)
                rows = _RowFetch(plan, {7} if recent else set())
                want = render_fetch(3, info, plan, None, None, utf8=False, recent=recent)
                assert rows.render(3, info) == want, (attributes, flags)
                checked += 1
    assert checked == 64 * len(flag_sets)
