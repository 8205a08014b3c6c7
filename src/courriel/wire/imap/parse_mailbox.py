"""Parsers for the mailbox commands: SELECT/EXAMINE, CREATE, LIST, LSUB, STATUS.

Theory of operation
-------------------
Each ``parse_*`` function receives the ``Reader`` positioned after the command name and returns
the command record; the caller checks that nothing follows. The extension syntax handled here:
SELECT parameters CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5), CREATE ... (USE (...))
(RFC 6154 §3), LIST-EXTENDED selection and return options with several patterns (RFC 5258),
LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and the STATUS items of CONDSTORE, STATUS=SIZE
(RFC 8438) and APPENDLIMIT (RFC 7889).
"""

from __future__ import annotations

from courriel.wire.imap.commands import (
    Create,
    Examine,
    List,
    Lsub,
    QResyncParams,
    Select,
    Status,
)
from courriel.wire.imap.lexer import Reader
from courriel.wire.imap.sequence import STAR, SequenceSet

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051 §6.3.11
        "SIZE",  # RFC 8438
        "MAILBOXID",  # RFC 8474 §4.2
        "RECENT",  # RFC 3501 only; answered as 0 by rev2 servers
        "HIGHESTMODSEQ",  # RFC 7162 §3.1.9
        "APPENDLIMIT",  # RFC 7889 §3
    }
)
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
# MYRIGHTS: RFC 8440 §3 (LIST-MYRIGHTS)
LIST_RETURNS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "MYRIGHTS"})
USE_ATTRIBUTES = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


def _uid_set_without_star(r: Reader, what: str) -> SequenceSet:
    uids = r.sequence_set(what, allow_saved=False)
    if any(STAR in rng for rng in uids.ranges):
        r.fail(f"* is not allowed in {what}")  # RFC 7162 §7 known-uids
    return uids


def _qresync(r: Reader) -> QResyncParams:
    r.sp("'(' after QRESYNC")
    r.open_paren("'(' after QRESYNC")
    uidvalidity = r.number("UIDVALIDITY in QRESYNC", nonzero=True)
    r.sp("mod-sequence after UIDVALIDITY in QRESYNC")
    modseq = r.number("mod-sequence in QRESYNC", bits=64)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.maybe_sp():
        if r.peek() != 0x28:
            known = _uid_set_without_star(r, "known UIDs in QRESYNC")
            if not r.maybe_sp():
                r.close_paren("')' to end QRESYNC")
                return QResyncParams(uidvalidity, modseq, known)
        r.open_paren("sequence match data in QRESYNC")
        seqs = r.sequence_set("known sequence numbers in QRESYNC", allow_saved=False)
        r.sp("known UIDs in QRESYNC sequence match data")
        uids = _uid_set_without_star(r, "known UIDs in QRESYNC sequence match data")
        r.close_paren("')' to end QRESYNC sequence match data")
        match = (seqs, uids)
    r.close_paren("')' to end QRESYNC")
    return QResyncParams(uidvalidity, modseq, known, match)


def _select_params(r: Reader) -> tuple[bool, QResyncParams | None]:
    condstore = False
    qresync = None
    if not r.maybe_sp():
        return condstore, qresync
    r.open_paren("'(' to start SELECT parameters")
    while True:
        name = r.keyword("SELECT parameter")
        if name == "CONDSTORE":  # RFC 7162 §3.1.8
            condstore = True
        elif name == "QRESYNC":  # RFC 7162 §3.2.5
            qresync = _qresync(r)
        else:
            r.fail(f"Unknown SELECT parameter {name}")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end SELECT parameters")
    return condstore, qresync


def parse_select(r: Reader, uid: bool) -> Select:
    r.sp("mailbox name after SELECT")
    mailbox = r.mailbox()
    condstore, qresync = _select_params(r)
    return Select(r.tag, mailbox, condstore, qresync)


def parse_examine(r: Reader, uid: bool) -> Examine:
    r.sp("mailbox name after EXAMINE")
    mailbox = r.mailbox()
    condstore, qresync = _select_params(r)
    return Examine(r.tag, mailbox, condstore, qresync)


def _use_attributes(r: Reader) -> tuple[str, ...]:
    r.sp("'(' after USE")
    r.open_paren("'(' after USE")
    attrs: list[str] = []
    if r.peek() != 0x29:
        while True:
            if r.peek() != 0x5C:
                r.fail("Expected a special-use attribute such as \\Sent")
            flag = r.flag("special-use attribute")
            attrs.append(USE_ATTRIBUTES.get(flag.upper(), flag))
            if not r.maybe_sp():
                break
    r.close_paren("')' to end the USE list")
    return tuple(attrs)


def parse_create(r: Reader, uid: bool) -> Create:
    r.sp("mailbox name after CREATE")
    mailbox = r.mailbox()
    use: tuple[str, ...] = ()
    if r.maybe_sp():
        r.open_paren("'(' to start CREATE parameters")
        while True:
            name = r.keyword("CREATE parameter")
            if name != "USE":  # RFC 6154 §3
                r.fail(f"Unknown CREATE parameter {name}")
            use += _use_attributes(r)
            if not r.maybe_sp():
                break
        r.close_paren("')' to end CREATE parameters")
    return Create(r.tag, mailbox, use)


def _options(r: Reader, known: frozenset[str], what: str) -> set[str]:
    r.open_paren(f"'(' to start {what}")
    found: set[str] = set()
    if r.peek() != 0x29:
        while True:
            name = r.keyword(what)
            if name not in known:
                r.fail(f"Unknown {what[:-1]} {name}")  # RFC 5258 §3: unknown options are BAD
            found.add(name)
            if not r.maybe_sp():
                break
    r.close_paren(f"')' to end {what}")
    return found


def _status_items(r: Reader, what: str) -> tuple[str, ...]:
    r.open_paren(f"'(' to start {what}")
    items: list[str] = []
    while True:
        name = r.keyword(what)
        if name not in STATUS_ITEMS:
            r.fail(f"Unknown STATUS item {name}")
        items.append(name)
        if not r.maybe_sp():
            break
    r.close_paren(f"')' to end {what}")
    return tuple(dict.fromkeys(items))


def _list_returns(r: Reader) -> tuple[set[str], tuple[str, ...] | None]:
    r.open_paren("'(' after RETURN")
    found: set[str] = set()
    status: tuple[str, ...] | None = None
    if r.peek() != 0x29:
        while True:
            name = r.keyword("LIST return option")
            if name == "STATUS":  # RFC 5819 §3
                r.sp("'(' after STATUS")
                status = _status_items(r, "STATUS items")
            elif name in LIST_RETURNS:
                found.add(name)
            else:
                r.fail(f"Unknown LIST return option {name}")  # RFC 5258 §3
            if not r.maybe_sp():
                break
    r.close_paren("')' to end LIST return options")
    return found, status


def _patterns(r: Reader) -> tuple[tuple[str, ...], bool]:
    if r.peek() != 0x28:
        return (r.list_mailbox(),), False
    r.open_paren("'(' to start mailbox patterns")
    patterns = [r.list_mailbox()]
    while r.maybe_sp():
        patterns.append(r.list_mailbox())
    r.close_paren("')' to end mailbox patterns")
    return tuple(patterns), True  # RFC 5258 §3: several patterns at once


def parse_list(r: Reader, uid: bool) -> List:
    r.sp("reference name after LIST")
    selection: set[str] = set()
    extended = False
    if r.peek() == 0x28:
        selection = _options(r, LIST_SELECTION, "LIST selection options")
        extended = True
        r.sp("reference name after LIST selection options")
        # RFC 5258 §3.1: RECURSIVEMATCH needs another selection option than REMOTE
        if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
            r.fail("RECURSIVEMATCH must be combined with another selection option")
    reference = r.mailbox("reference name", inbox=False)
    r.sp("mailbox pattern after the reference name")
    patterns, several = _patterns(r)
    returns: set[str] = set()
    status = None
    if r.maybe_sp():
        if r.keyword("RETURN") != "RETURN":
            r.fail("Expected RETURN after the mailbox pattern")
        r.sp("'(' after RETURN")
        returns, status = _list_returns(r)
        extended = True
    return List(
        r.tag,
        reference,
        patterns,
        frozenset(selection),
        frozenset(returns),
        status,
        extended or several,
    )


def parse_lsub(r: Reader, uid: bool) -> Lsub:
    r.sp("reference name after LSUB")
    reference = r.mailbox("reference name", inbox=False)
    r.sp("mailbox pattern after the reference name")
    return Lsub(r.tag, reference, r.list_mailbox())


def parse_status(r: Reader, uid: bool) -> Status:
    r.sp("mailbox name after STATUS")
    mailbox = r.mailbox()
    r.sp("'(' after the mailbox name")
    return Status(r.tag, mailbox, _status_items(r, "STATUS items"))
