"""The response encoder, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.wire.imap import responses as r
from courriel.wire.imap.fetch import FetchBody, Section, SectionText
from courriel.wire.imap.strings import astring, mailbox, nstring, string


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (r.ok("a1"), b"a1 OK completed\r\n"),
        (r.ok("a1", "SELECT completed", r.READ_WRITE), b"a1 OK [READ-WRITE] SELECT completed\r\n"),
        (r.ok("a1", "done", r.uidnext(4392)), b"a1 OK [UIDNEXT 4392] done\r\n"),
        (r.no("a1", "No such mailbox", r.TRYCREATE), b"a1 NO [TRYCREATE] No such mailbox\r\n"),
        (r.no("a1", "Gone", r.NONEXISTENT), b"a1 NO [NONEXISTENT] Gone\r\n"),
        (r.no("a1", "Exists", r.ALREADYEXISTS), b"a1 NO [ALREADYEXISTS] Exists\r\n"),
        (r.no("a1", "No", r.CANNOT), b"a1 NO [CANNOT] No\r\n"),
        (r.no("a1", "Big", r.TOOBIG), b"a1 NO [TOOBIG] Big\r\n"),
        (r.no("a1", "Full", r.OVERQUOTA), b"a1 NO [OVERQUOTA] Full\r\n"),
        (r.no("a1", "Later", r.UNAVAILABLE), b"a1 NO [UNAVAILABLE] Later\r\n"),
        (r.no("a1", "Oops", r.SERVERBUG), b"a1 NO [SERVERBUG] Oops\r\n"),
        (r.bad("a1", "Bad", r.CLIENTBUG), b"a1 BAD [CLIENTBUG] Bad\r\n"),
        (r.untagged("OK", "Closed", r.CLOSED), b"* OK [CLOSED] Closed\r\n"),
        (r.untagged("OK", "No modseq", r.NOMODSEQ), b"* OK [NOMODSEQ] No modseq\r\n"),
        (
            r.untagged("OK", "Ok", r.uidvalidity(3857529045)),
            b"* OK [UIDVALIDITY 3857529045] Ok\r\n",
        ),
        (
            r.untagged("OK", "Ok", r.highestmodseq(715194045007)),
            b"* OK [HIGHESTMODSEQ 715194045007] Ok\r\n",
        ),
        (r.untagged("NO", "Look", r.ALERT), b"* NO [ALERT] Look\r\n"),
        (r.untagged("BYE", "Logging out"), b"* BYE Logging out\r\n"),
        (r.ok("a1", "Done", r.appenduid(38505, [3955])), b"a1 OK [APPENDUID 38505 3955] Done\r\n"),
        (r.ok("a1", "Done", r.appenduid(7, [1, 2, 3, 7])), b"a1 OK [APPENDUID 7 1:3,7] Done\r\n"),
        (
            r.ok("a1", "Done", r.copyuid(38505, [(304, 3956), (319, 3957), (320, 3958)])),
            b"a1 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        ),
        (
            r.ok("a1", "Done", r.copyuid(1, [(5, 12), (3, 10), (4, 11)])),
            b"a1 OK [COPYUID 1 3:5 10:12] Done\r\n",
        ),
        (
            r.ok("a1", "Conditional", r.modified([7, 9, 8, 12])),
            b"a1 OK [MODIFIED 7:9,12] Conditional\r\n",
        ),
        (
            r.untagged("OK", "Limited", r.permanentflags(["\\Deleted", "\\Seen"])),
            b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        ),
        (
            r.untagged("OK", "x", r.permanentflags([], new_keywords=False)),
            b"* OK [PERMANENTFLAGS ()] x\r\n",
        ),
        (
            r.untagged("OK", "Ready", r.capability_code(["IMAP4rev1", "IMAP4rev2", "IDLE"])),
            b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 IDLE] Ready\r\n",
        ),
        (
            r.no("a1", "x", r.badcharset(["UTF-8", "US-ASCII"])),
            b"a1 NO [BADCHARSET (UTF-8 US-ASCII)] x\r\n",
        ),
        (r.continuation("Ready"), b"+ Ready\r\n"),
        (r.continuation(), b"+ \r\n"),
    ],
)
def test_status_responses(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (r.capability(["IMAP4rev2", "AUTH=PLAIN"]), b"* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n"),
        (r.exists(23), b"* 23 EXISTS\r\n"),
        (r.recent(0), b"* 0 RECENT\r\n"),
        (r.expunge(44), b"* 44 EXPUNGE\r\n"),
        (r.vanished([405, 406, 407, 410]), b"* VANISHED 405:407,410\r\n"),
        (r.vanished([41, 43, 44], earlier=True), b"* VANISHED (EARLIER) 41,43:44\r\n"),
        (r.flags(["\\Answered", "\\Seen", "$Junk"]), b"* FLAGS (\\Answered \\Seen $Junk)\r\n"),
        (r.list_item(["\\HasNoChildren"], "/", "INBOX"), b'* LIST (\\HasNoChildren) "/" INBOX\r\n'),
        (r.list_item(["\\Noselect"], None, ""), b'* LIST (\\Noselect) NIL ""\r\n'),
        (
            r.list_item(["\\Sent"], "/", "Envoy\u00e9s"),
            b'* LIST (\\Sent) "/" Envoy&AOk-s\r\n',
        ),
        (
            r.list_item(["\\Sent"], "/", "Envoy\u00e9s", utf8=True),
            '* LIST (\\Sent) "/" "Envoy\u00e9s"\r\n'.encode(),
        ),
        (
            r.list_item([], "/", "My Box", childinfo=True),
            b'* LIST () "/" "My Box" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        ),
        (
            r.list_item(["\\Subscribed"], "/", "New", oldname="Old"),
            b'* LIST (\\Subscribed) "/" New ("OLDNAME" (Old))\r\n',
        ),
        (r.lsub_item([], "/", "News/comp"), b'* LSUB () "/" News/comp\r\n'),
        (
            r.status("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]),
            b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
        ),
        (r.status("INBOX", [("SIZE", 0)]), b"* STATUS INBOX (SIZE 0)\r\n"),
        (r.search([2, 84, 882]), b"* SEARCH 2 84 882\r\n"),
        (r.search([]), b"* SEARCH\r\n"),
        (r.search([2, 5], modseq=917162500), b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"),
        (
            r.esearch("A282", uid=True, minimum=2, maximum=47, count=5),
            b'* ESEARCH (TAG "A282") UID MIN 2 MAX 47 COUNT 5\r\n',
        ),
        (
            r.esearch("A283", uid=False, all_numbers=[2, 10, 11, 12, 13]),
            b'* ESEARCH (TAG "A283") ALL 2,10:13\r\n',
        ),
        (
            r.esearch("A284", uid=False, all_numbers=[], count=0),
            b'* ESEARCH (TAG "A284") COUNT 0\r\n',
        ),
        (
            r.esearch("a", uid=True, maximum=9, modseq=12),
            b'* ESEARCH (TAG "a") UID MAX 9 MODSEQ 12\r\n',
        ),
        (r.namespace([("", "/")]), b'* NAMESPACE (("" "/")) NIL NIL\r\n'),
        (
            r.namespace([("", "/")], [("~", "/")], [("#shared/", "/"), ("#public/", None)]),
            b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public/" NIL))\r\n',
        ),
        (r.id_response(None), b"* ID NIL\r\n"),
        (
            r.id_response([("name", "courriel"), ("support-url", None)]),
            b'* ID ("name" "courriel" "support-url" NIL)\r\n',
        ),
        (r.enabled(["CONDSTORE", "QRESYNC"]), b"* ENABLED CONDSTORE QRESYNC\r\n"),
        (r.enabled([]), b"* ENABLED\r\n"),
        (r.quota("", [("STORAGE", 10, 512)]), b'* QUOTA "" (STORAGE 10 512)\r\n'),
        (
            r.quota("user", [("STORAGE", 1, 2), ("MESSAGE", 3, 4)]),
            b"* QUOTA user (STORAGE 1 2 MESSAGE 3 4)\r\n",
        ),
        (r.quotaroot("INBOX", [""]), b'* QUOTAROOT INBOX ""\r\n'),
        (r.quotaroot("comp.mail.mime", []), b"* QUOTAROOT comp.mail.mime\r\n"),
    ],
)
def test_untagged_data(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


def test_fetch_response_from_pre_encoded_items() -> None:
    envelope = (
        b'("Mon, 7 Feb 1994 21:52:25 -0800" "afternoon meeting" NIL NIL NIL NIL NIL NIL NIL NIL)'
    )
    when = datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8)))
    items = [
        r.item_uid(4827313),
        r.item_flags(["\\Seen", "$Forwarded"]),
        r.item_modseq(12121231000),
        r.item_internaldate(when),
        r.item_rfc822_size(44827),
        r.item_raw(b"ENVELOPE", envelope),
        r.item_section(
            FetchBody(Section((), SectionText.TEXT), (0, 5), True).response_name(), b"Hello"
        ),
    ]
    assert r.fetch(12, items) == (
        b"* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) MODSEQ (12121231000) "
        b'INTERNALDATE "07-Feb-1994 21:52:25 -0800" RFC822.SIZE 44827 ENVELOPE '
        + envelope
        + b" BODY[TEXT]<0> {5}\r\nHello)\r\n"
    )


def test_fetch_items_edge_cases() -> None:
    assert r.item_flags([]) == b"FLAGS ()"
    assert r.item_internaldate(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        b'INTERNALDATE "02-Jan-2026 03:04:05 +0000"'
    )
    assert r.item_internaldate(datetime(2026, 1, 2, 3, 4, 5)) == (
        b'INTERNALDATE "02-Jan-2026 03:04:05 +0000"'
    )
    ist = timezone(timedelta(hours=5, minutes=30))
    assert r.item_internaldate(datetime(2026, 12, 31, 23, 59, 59, tzinfo=ist)) == (
        b'INTERNALDATE "31-Dec-2026 23:59:59 +0530"'
    )
    assert r.item_section(b"BODY[1]", None) == b"BODY[1] NIL"
    assert r.item_section(b"BODY[]", b"a\x00b") == b"BODY[] {3}\r\na\x80b"
    assert r.item_binary(b"BINARY[1]", b"a\x00b") == b"BINARY[1] ~{3}\r\na\x00b"
    assert r.item_binary(b"BINARY[1]", b"ab") == b"BINARY[1] {2}\r\nab"
    assert r.item_binary_size(b"BINARY.SIZE[1]", 42) == b"BINARY.SIZE[1] 42"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INBOX", b"INBOX"),
        ("nil", b'"nil"'),
        ("", b'""'),
        ("a b", b'"a b"'),
        ('say "hi"\\', b'"say \\"hi\\"\\\\"'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("caf\u00e9", b"{5}\r\ncaf\xc3\xa9"),
    ],
)
def test_astring(value: str, expected: bytes) -> None:
    assert astring(value) == expected


def test_strings_in_utf8_mode() -> None:
    assert string("caf\u00e9", utf8=True) == b'"caf\xc3\xa9"'
    assert nstring(None) == b"NIL"
    assert mailbox("inbox") == b"INBOX"
    assert (
        mailbox("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e") == b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    )
    assert mailbox("A&B") == b"A&-B"
