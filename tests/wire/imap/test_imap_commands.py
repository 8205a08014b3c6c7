"""Table tests: each command line of RFC 9051, RFC 3501 and the announced extensions parses
to the expected record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.wire.imap import commands as c
from courriel.wire.imap.fetch import FetchItem
from courriel.wire.imap.lexer import InvalidName
from courriel.wire.imap.search import SearchAll, SearchFlag
from courriel.wire.imap.sequence import STAR, SequenceSet
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm


def seq(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


CASES: list[tuple[bytes, object]] = [
    # any state
    (b"a1 CAPABILITY", c.Capability("a1")),
    (b"a1 capability", c.Capability("a1")),
    (b"a1 NOOP", c.Noop("a1")),
    (b"a1 LOGOUT", c.Logout("a1")),
    (b"a1 ID NIL", c.Id("a1", None)),
    (b"a1 ID ()", c.Id("a1", ())),
    (
        b'a1 ID ("name" "mutt" "version" NIL)',
        c.Id("a1", (("name", "mutt"), ("version", None))),
    ),
    # not authenticated
    (b"a1 STARTTLS", c.StartTLS("a1")),
    (b"a1 AUTHENTICATE PLAIN", c.Authenticate("a1", "PLAIN", None)),
    (b"a1 authenticate plain =", c.Authenticate("a1", "PLAIN", b"")),
    (
        b"a1 AUTHENTICATE PLAIN AGJvYgBwdw==",
        c.Authenticate("a1", "PLAIN", b"\x00bob\x00pw"),
    ),
    (b"a1 LOGIN bob secret", c.Login("a1", "bob", "secret")),
    (b'a1 LOGIN "bob@example.org" "p a\\"ss"', c.Login("a1", "bob@example.org", 'p a"ss')),
    (b"a1 LOGIN {3}\r\nbob {4+}\r\nw\xc3\xa9b", c.Login("a1", "bob", "w\u00e9b")),
    # authenticated
    (b"a1 ENABLE CONDSTORE qresync", c.Enable("a1", ("CONDSTORE", "QRESYNC"))),
    (b"a1 ENABLE UTF8=ACCEPT IMAP4rev2", c.Enable("a1", ("UTF8=ACCEPT", "IMAP4REV2"))),
    (b"a1 SELECT INBOX", c.Select("a1", "INBOX")),
    (b"a1 SELECT inbox", c.Select("a1", "INBOX")),
    (b'a1 SELECT "Sent Items"', c.Select("a1", "Sent Items")),
    (b"a1 SELECT INBOX (CONDSTORE)", c.Select("a1", "INBOX", condstore=True)),
    (b"a1 EXAMINE Archive", c.Examine("a1", "Archive")),
    (
        b"a1 SELECT INBOX (QRESYNC (67890007 90060115194045000))",
        c.Select("a1", "INBOX", qresync=c.QResyncParams(67890007, 90060115194045000)),
    ),
    (
        b"a1 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        c.Select(
            "a1",
            "INBOX",
            qresync=c.QResyncParams(
                67890007, 20050715194045000, seq((41, 41), (43, 211), (214, 541))
            ),
        ),
    ),
    (
        b"a1 EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000 "
        b"15000,22500,27000)))",
        c.Examine(
            "a1",
            "INBOX",
            qresync=c.QResyncParams(
                67890007,
                90060115194045000,
                seq((1, 29997)),
                (
                    seq((5000, 5000), (7500, 7500), (9000, 9000)),
                    seq((15000, 15000), (22500, 22500), (27000, 27000)),
                ),
            ),
        ),
    ),
    (b"a1 CREATE Projects/2026", c.Create("a1", "Projects/2026")),
    (b"a1 CREATE Sent (USE (\\Sent))", c.Create("a1", "Sent", ("\\Sent",))),
    (b"a1 CREATE Arch (use (\\archive \\Junk))", c.Create("a1", "Arch", ("\\Archive", "\\Junk"))),
    (b"a1 DELETE Old", c.Delete("a1", "Old")),
    (b"a1 RENAME Old New", c.Rename("a1", "Old", "New")),
    (b"a1 SUBSCRIBE News", c.Subscribe("a1", "News")),
    (b"a1 UNSUBSCRIBE News", c.Unsubscribe("a1", "News")),
    (b'a1 LIST "" *', c.List("a1", "", ("*",))),
    (b'a1 LIST "" ""', c.List("a1", "", ("",))),
    (b"a1 LIST ~/Mail/ %", c.List("a1", "~/Mail/", ("%",))),
    (b'a1 LIST "" INBOX/%/*]', c.List("a1", "", ("INBOX/%/*]",))),
    (
        b'a1 LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
        c.List("a1", "", ("%",), frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}), extended=True),
    ),
    (
        b'a1 LIST () "" ("INBOX" "Drafts" Sent/%)',
        c.List("a1", "", ("INBOX", "Drafts", "Sent/%"), extended=True),
    ),
    (
        b'a1 LIST (SPECIAL-USE) "" * RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)',
        c.List(
            "a1",
            "",
            ("*",),
            frozenset({"SPECIAL-USE"}),
            frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"}),
            extended=True,
        ),
    ),
    (
        b'a1 LIST "" % RETURN (STATUS (MESSAGES UNSEEN SIZE))',
        c.List("a1", "", ("%",), status=("MESSAGES", "UNSEEN", "SIZE"), extended=True),
    ),
    (
        b'a1 LIST (REMOTE) "" * RETURN ()',
        c.List("a1", "", ("*",), frozenset({"REMOTE"}), extended=True),
    ),
    (b'a1 LSUB "" News/*', c.Lsub("a1", "", "News/*")),
    (b"a1 NAMESPACE", c.Namespace("a1")),
    (
        b"a1 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)",
        c.Status(
            "a1",
            "INBOX",
            ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ"),
        ),
    ),
    (b"a1 STATUS Foo (recent appendlimit)", c.Status("a1", "Foo", ("RECENT", "APPENDLIMIT"))),
    (b"a1 IDLE", c.Idle("a1")),
    (b"a1 COMPRESS DEFLATE", c.Compress("a1", "DEFLATE")),
    (b'a1 GETQUOTA ""', c.GetQuota("a1", "")),
    (b"a1 GETQUOTAROOT INBOX", c.GetQuotaRoot("a1", "INBOX")),
    # RFC 4314 §3 (more in test_imap_acl_parse.py)
    (b"a1 SETACL INBOX anyone lr", c.SetAcl("a1", "INBOX", "anyone", "lr")),
    (b"a1 DELETEACL INBOX anyone", c.DeleteAcl("a1", "INBOX", "anyone")),
    (b"a1 GETACL INBOX", c.GetAcl("a1", "INBOX")),
    (b"a1 LISTRIGHTS INBOX anyone", c.ListRights("a1", "INBOX", "anyone")),
    (b"a1 MYRIGHTS INBOX", c.MyRights("a1", "INBOX")),
    (b"a1 NOTIFY NONE", c.Notify("a1", None)),
    # RFC 4467 §6 (more in test_imap_url.py and tests/session/test_imap_urlauth.py)
    (b"a1 GENURLAUTH imap://x INTERNAL", c.GenUrlAuth("a1", (("imap://x", "INTERNAL"),))),
    (b"a1 RESETKEY", c.ResetKey("a1", None)),
    (
        b"a1 URLFETCH imap://x",
        c.UrlFetch("a1", (c.UrlFetchItem("imap://x"),)),
    ),  # RFC 5465 (more in test_imap_notify_parse.py)
    # RFC 5464 §4 (more in test_imap_metadata_parse.py)
    (b'a1 GETMETADATA "" /private/x', c.GetMetadata("a1", "", ("/private/x",))),
    (b"a1 SETMETADATA INBOX (/shared/x NIL)", c.SetMetadata("a1", "INBOX", (("/shared/x", None),))),
    (
        b'a1 SETQUOTA "" (STORAGE 512 MESSAGE 1000)',
        c.SetQuota("a1", "", (("STORAGE", 512), ("MESSAGE", 1000))),
    ),
    (b'a1 SETQUOTA "" ()', c.SetQuota("a1", "", ())),
    # selected
    (b"a1 CHECK", c.Check("a1")),
    (b"a1 CLOSE", c.Close("a1")),
    (b"a1 UNSELECT", c.Unselect("a1")),
    (b"a1 EXPUNGE", c.Expunge("a1")),
    (b"a1 UID EXPUNGE 3000:3002", c.Expunge("a1", seq((3000, 3002)))),
    (b"a1 SEARCH ALL", c.Search("a1", False, None, SearchAll())),
    (b"a1 UID SEARCH UNSEEN", c.Search("a1", True, None, SearchFlag("\\Seen", False))),
    (b"a1 SEARCH RETURN () ALL", c.Search("a1", False, None, SearchAll(), ("ALL",))),
    (
        b"a1 SEARCH RETURN (PARTIAL -1:-50) ALL",
        c.Search("a1", False, None, SearchAll(), ("PARTIAL",), (-1, -50)),
    ),
    (
        b"a1 UID SORT (REVERSE DATE) UTF-8 ALL",
        c.Sort("a1", True, (SortCriterion(SortKey.DATE, True),), "UTF-8", SearchAll()),
    ),
    (b'a1 CANCELUPDATE "t1" "t 2"', c.CancelUpdate("a1", ("t1", "t 2"))),
    (b"a1 unauthenticate", c.Unauthenticate("a1")),
    (
        b"a1 UID REPLACE 7 Drafts (\\Draft) {1+}\r\nx",
        c.Replace("a1", True, 7, "Drafts", c.AppendMessage(frozenset({"\\Draft"}), None, b"x")),
    ),
    (
        b"a1 THREAD ORDEREDSUBJECT US-ASCII ALL",
        c.Thread("a1", False, ThreadAlgorithm.ORDEREDSUBJECT, "US-ASCII", SearchAll()),
    ),
    (
        b"a1 SEARCH RETURN (MIN MAX COUNT SAVE) ALL",
        c.Search("a1", False, None, SearchAll(), ("MIN", "MAX", "COUNT", "SAVE")),
    ),
    (b"a1 FETCH 1 UID", c.Fetch("a1", False, seq((1, 1)), (FetchItem.UID,))),
    (b"a1 UID FETCH $ FLAGS", c.Fetch("a1", True, SequenceSet(saved=True), (FetchItem.FLAGS,))),
    (
        b"a1 STORE 2:4 +FLAGS (\\Deleted)",
        c.Store("a1", False, seq((2, 4)), c.StoreMode.ADD, False, frozenset({"\\Deleted"})),
    ),
    (
        b"a1 STORE 1 -flags.silent \\seen $Junk",
        c.Store("a1", False, seq((1, 1)), c.StoreMode.REMOVE, True, frozenset({"\\Seen", "$Junk"})),
    ),
    (
        b"a1 UID STORE 1:* FLAGS ()",
        c.Store("a1", True, seq((1, STAR)), c.StoreMode.REPLACE, False, frozenset()),
    ),
    (
        b"a1 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
        c.Store(
            "a1",
            False,
            seq((7, 7), (5, 5), (9, 9)),
            c.StoreMode.ADD,
            True,
            frozenset({"\\Deleted"}),
            320162338,
        ),
    ),
    (b"a1 COPY 2:4 MEETING", c.Copy("a1", False, seq((2, 4)), "MEETING")),
    (b"a1 UID COPY 1:* Trash", c.Copy("a1", True, seq((1, STAR)), "Trash")),
    (b"a1 MOVE 1:3 Archive", c.Move("a1", False, seq((1, 3)), "Archive")),
    (b"a1 uid move 42 Junk", c.Move("a1", True, seq((42, 42)), "Junk")),
    # tags may hold any ASTRING-CHAR but "+" (RFC 9051 §9), including "]"
    (b"A.0001]x NOOP", c.Noop("A.0001]x")),
]


@pytest.mark.parametrize(
    ("line", "expected"), CASES, ids=[x[0].decode("latin-1")[:60] for x in CASES]
)
def test_command_parses(parse, line: bytes, expected: object) -> None:
    assert parse(line) == expected


def test_append_single_message_with_flags_and_date(parse) -> None:
    cmd = parse(b'a1 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {5}\r\nHello')
    tz = timezone(-timedelta(hours=8))
    assert cmd == c.Append(
        "a1",
        "saved-messages",
        (
            c.AppendMessage(
                frozenset({"\\Seen"}), datetime(1994, 2, 7, 21, 52, 25, tzinfo=tz), b"Hello"
            ),
        ),
    )


def test_multiappend_mixes_literal_kinds(parse) -> None:
    # RFC 3502 MULTIAPPEND with a plain literal, a literal8 and a UTF8 (literal8) message
    cmd = parse(
        b'a1 APPEND Drafts (\\Draft) {3+}\r\none "01-Jan-2026 00:00:00 +0000" ~{3+}\r\nt\x00o'
        b" UTF8 (~{5+}\r\nthr\xc3\xa9)"
    )
    assert isinstance(cmd, c.Append)
    assert [m.data for m in cmd.messages] == [b"one", b"t\x00o", b"thr\xc3\xa9"]
    assert [(m.binary, m.utf8) for m in cmd.messages] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert cmd.messages[0].flags == frozenset({"\\Draft"})
    assert cmd.messages[1].internal_date == datetime(2026, 1, 1, tzinfo=UTC)
    assert cmd.messages[2].flags == frozenset() and cmd.messages[2].internal_date is None


def test_mailbox_names_decode_modified_utf7_for_rev1_clients(parse) -> None:
    cmd = parse(b"a1 SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    assert cmd == c.Select("a1", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e")


def test_mailbox_names_are_utf8_after_enable(parse) -> None:
    cmd = parse('a1 CREATE "Brouillons/\u00e9t\u00e9"'.encode(), utf8=True)
    assert cmd == c.Create("a1", "Brouillons/\u00e9t\u00e9")
    # the same bytes are not modified UTF-7, so an IMAP4rev1 client gets a NO
    with pytest.raises(InvalidName, match="modified UTF-7") as caught:
        parse('a1 CREATE "Brouillons/\u00e9t\u00e9"'.encode())
    assert caught.value.reply.startswith(b"a1 NO [CANNOT] ")
    assert not caught.value.fatal


def test_list_patterns_decode_modified_utf7(parse) -> None:
    cmd = parse(b'a1 LIST "" "&ZeVnLIqe-/*"')
    assert cmd == c.List("a1", "", ("\u65e5\u672c\u8a9e/*",))


def test_invalid_modified_utf7_in_list_is_read_literally(parse) -> None:
    cmd = parse(b'a1 LIST "&Jjo" "!#$&\'+,-.%*"')
    assert cmd == c.List("a1", "&Jjo", ("!#$&'+,-.%*",))
    assert parse(b'a1 LSUB "" &') == c.Lsub("a1", "", "&")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a1 FOO", b"a1 BAD Unknown command FOO\r\n"),
        (b"a1 UID NOOP", b"a1 BAD Unknown command UID NOOP\r\n"),
        (b"a1 FETCH", b"a1 BAD Expected sequence set after FETCH\r\n"),
        (b"a1 FETCH x FLAGS", b"a1 BAD Expected sequence set after FETCH\r\n"),
        (b"a1 NOOP extra", b"a1 BAD Unexpected extra arguments\r\n"),
        (b"a1 LOGIN bob", b"a1 BAD Expected password after the user name\r\n"),
        (b"a1  NOOP", b"a1 BAD Expected command name after the tag\r\n"),
        (b"a1 SELECT INBOX (FOO)", b"a1 BAD Unknown SELECT parameter FOO\r\n"),
        (
            b"a1 CREATE x (USE (Sent))",
            b"a1 BAD Expected a special-use attribute such as \\Sent\r\n",
        ),
        (
            b'a1 LIST (RECURSIVEMATCH) "" *',
            b"a1 BAD RECURSIVEMATCH must be combined with another selection option\r\n",
        ),
        (b'a1 LIST (BOGUS) "" *', b"a1 BAD Unknown LIST selection option BOGUS\r\n"),
        (b'a1 LIST "" * RETURN (BOGUS)', b"a1 BAD Unknown LIST return option BOGUS\r\n"),
        (b"a1 STATUS INBOX ()", b"a1 BAD Expected STATUS items\r\n"),
        (b"a1 STATUS INBOX (FOO)", b"a1 BAD Unknown STATUS item FOO\r\n"),
        (b"a1 STORE 1 FLAGS", b"a1 BAD Expected FLAGS, +FLAGS or -FLAGS\r\n"),
        (b"a1 STORE 1 XFLAGS (\\Seen)", b"a1 BAD Expected FLAGS, +FLAGS or -FLAGS\r\n"),
        (b"a1 APPEND INBOX", b"a1 BAD Expected message after the mailbox name\r\n"),
        (
            b'a1 APPEND INBOX "32-Jan-2026 00:00:00 +0000" {1}\r\nx',
            b'a1 BAD Invalid date-time, expected "dd-Mon-yyyy hh:mm:ss +zzzz"\r\n',
        ),
        (b"a1 AUTHENTICATE PLAIN AGJvYgBwdw", b"a1 BAD Invalid base64 in the initial response\r\n"),
        (b"a1 ENABLE", b"a1 BAD Expected capability after ENABLE\r\n"),
        (b'a1 ID ("a")', b"a1 BAD Expected ID field value\r\n"),
        (
            b"a1 SELECT INBOX (QRESYNC (0 5))",
            b"a1 BAD Expected UIDVALIDITY in QRESYNC (non-zero)\r\n",
        ),
        (
            b"a1 SELECT INBOX (QRESYNC (1 5 1:*))",
            b"a1 BAD * is not allowed in known UIDs in QRESYNC\r\n",
        ),
        (b"a1 UID EXPUNGE", b"a1 BAD Expected UID set after UID EXPUNGE\r\n"),
        (b'a1 LOGIN "bob pw', b"a1 BAD Expected user name (bad quoted string)\r\n"),
        (b'a1 LOGIN "b\\ob" pw', b"a1 BAD Expected user name (bad quoted string)\r\n"),
        (b"+tag NOOP", b"* BAD Invalid or missing tag\r\n"),
        (b"(x NOOP", b"* BAD Invalid or missing tag\r\n"),
    ],
)
def test_malformed_commands_get_a_clear_bad(reply, line: bytes, message: bytes) -> None:
    assert reply(line) == message


def test_every_command_in_the_state_table_has_a_parser() -> None:
    from courriel.wire.imap.parser import COMMANDS

    parsed_types = {type(cmd) for _, cmd in CASES} | {c.Append}
    assert parsed_types == set(c.STATES)
    assert len(COMMANDS) == len(c.STATES)


@pytest.mark.parametrize(
    ("command", "state", "legal"),
    [
        (c.Login("a", "u", "p"), c.State.NOT_AUTHENTICATED, True),
        (c.Login("a", "u", "p"), c.State.AUTHENTICATED, False),
        (c.Capability("a"), c.State.SELECTED, True),
        (c.Capability("a"), c.State.LOGOUT, False),
        (c.Select("a", "INBOX"), c.State.NOT_AUTHENTICATED, False),
        (c.Select("a", "INBOX"), c.State.SELECTED, True),
        (c.Enable("a", ("CONDSTORE",)), c.State.SELECTED, False),
        (
            c.Fetch("a", False, SequenceSet(((1, 1),)), (FetchItem.UID,)),
            c.State.AUTHENTICATED,
            False,
        ),
        (c.Fetch("a", False, SequenceSet(((1, 1),)), (FetchItem.UID,)), c.State.SELECTED, True),
        (c.Idle("a"), c.State.AUTHENTICATED, True),
        (c.StartTLS("a"), c.State.AUTHENTICATED, False),
    ],
)
def test_state_table(command: c.Command, state: c.State, legal: bool) -> None:
    assert c.allowed(command, state) is legal
