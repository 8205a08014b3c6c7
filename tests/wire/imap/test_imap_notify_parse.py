"""RFC 5465 §8: parsing NOTIFY, and the grammar rules it checks with BAD."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import commands as c
from courriel.wire.imap.fetch import FetchItem
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command


def parse(line: bytes) -> c.Command:
    return parse_command([line], [], limits=Limits(), utf8=False)


def test_set_with_status_and_groups() -> None:
    cmd = parse(
        b"a NOTIFY SET STATUS (selected (messagenew (uid) MessageExpunge))"
        b" (subtree (Lists Work) (MessageNew MessageExpunge FlagChange)) (personal (MailboxName))"
        b" (mailboxes Junk NONE)"
    )
    assert cmd == c.Notify(
        "a",
        (
            c.NotifyGroup("SELECTED", (), ("MessageNew", "MessageExpunge"), (FetchItem.UID,)),
            c.NotifyGroup(
                "SUBTREE", ("Lists", "Work"), ("MessageNew", "MessageExpunge", "FlagChange")
            ),
            c.NotifyGroup("PERSONAL", (), ("MailboxName",)),
            c.NotifyGroup("MAILBOXES", ("Junk",), ()),
        ),
        status=True,
    )


def test_other_filters_take_any_message_event_alone() -> None:
    cmd = parse(b"a NOTIFY SET (personal (MessageExpunge)) (inboxes (FlagChange))")
    assert cmd == c.Notify(
        "a",
        (
            c.NotifyGroup("PERSONAL", (), ("MessageExpunge",)),
            c.NotifyGroup("INBOXES", (), ("FlagChange",)),
        ),
    )


def test_none_and_unknown_events_are_kept_for_the_session() -> None:
    assert parse(b"a NOTIFY NONE") == c.Notify("a", None)
    cmd = parse(b"a NOTIFY SET (inboxes (XFuture))")
    assert cmd == c.Notify("a", (c.NotifyGroup("INBOXES", (), ("XFUTURE",)),))


@pytest.mark.parametrize(
    "line",
    [
        b"a NOTIFY",
        b"a NOTIFY SET",
        b"a NOTIFY SET STATUS",
        b"a NOTIFY GET (personal NONE)",
        b"a NOTIFY SET (everything (MessageNew MessageExpunge))",
        b"a NOTIFY SET (selected (MessageNew))",  # §5.2: with MessageExpunge
        b"a NOTIFY SET (selected-delayed (FlagChange))",  # §5.1: needs both
        b"a NOTIFY SET (selected (MailboxName))",  # §6.1: message events only
        b"a NOTIFY SET (selected NONE) (selected-delayed NONE)",  # §6.1
        b"a NOTIFY SET (personal NONE) (personal NONE)",
        b"a NOTIFY SET (personal (MessageNew MessageNew MessageExpunge))",
        b"a NOTIFY SET (subtree (personal NONE)",
    ],
)
def test_malformed_is_bad(line: bytes) -> None:
    with pytest.raises(ProtocolError) as e:
        parse(line)
    assert e.value.reply.startswith(b"a BAD ")


def test_groups_and_mailboxes_are_bounded() -> None:
    many = b" ".join(b"m%d" % i for i in range(101))
    with pytest.raises(ProtocolError):
        parse(b"a NOTIFY SET (mailboxes (" + many + b") NONE)")
    groups = b" ".join(b"(mailboxes m%d NONE)" % i for i in range(11))
    with pytest.raises(ProtocolError):
        parse(b"a NOTIFY SET " + groups)
