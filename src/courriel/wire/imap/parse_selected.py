"""Parsers for the selected-state commands that change messages: STORE, COPY, MOVE, and
UID EXPUNGE (RFC 9051 §6.4, RFC 6851 MOVE, RFC 4315 UIDPLUS, RFC 7162 §3.1.3 UNCHANGEDSINCE).
"""

from __future__ import annotations

import re

from courriel.wire.imap.commands import Copy, Expunge, Move, Store, StoreMode
from courriel.wire.imap.lexer import Reader

_STORE_ATT_RE = re.compile(rb"([+-]?)FLAGS(\.SILENT)?(?= )", re.IGNORECASE)
_MODES = {b"+": StoreMode.ADD, b"-": StoreMode.REMOVE, b"": StoreMode.REPLACE}


def _unchangedsince(r: Reader) -> int:
    r.open_paren("'(' to start STORE modifiers")
    name = r.keyword("STORE modifier")
    if name != "UNCHANGEDSINCE":
        r.fail(f"Unknown STORE modifier {name}")
    r.sp("mod-sequence after UNCHANGEDSINCE")
    value = r.number("mod-sequence after UNCHANGEDSINCE", bits=64)  # RFC 7162 §3.1.3
    r.close_paren("')' to end STORE modifiers")
    return value


def parse_store(r: Reader, uid: bool) -> Store:
    r.sp("sequence set after STORE")
    sequence_set = r.sequence_set("sequence set after STORE")
    r.sp("FLAGS, +FLAGS or -FLAGS after the sequence set")
    unchangedsince = None
    if r.peek() == 0x28:
        unchangedsince = _unchangedsince(r)
        r.sp("FLAGS, +FLAGS or -FLAGS after the STORE modifiers")
    token = r.match(_STORE_ATT_RE)
    if token is None:
        r.fail("Expected FLAGS, +FLAGS or -FLAGS")
    mode = _MODES[token[:1] if token[:1] in (b"+", b"-") else b""]
    silent = token.upper().endswith(b".SILENT")
    r.sp("flags")
    if r.peek() == 0x28:
        flags = r.flag_list()
    else:
        names = [r.flag()]
        while r.maybe_sp():
            names.append(r.flag())
        flags = frozenset(names)
    return Store(r.tag, uid, sequence_set, mode, silent, flags, unchangedsince)


def parse_copy(r: Reader, uid: bool) -> Copy:
    r.sp("sequence set after COPY")
    sequence_set = r.sequence_set("sequence set after COPY")
    r.sp("mailbox name after the sequence set")
    return Copy(r.tag, uid, sequence_set, r.mailbox())


def parse_move(r: Reader, uid: bool) -> Move:
    r.sp("sequence set after MOVE")
    sequence_set = r.sequence_set("sequence set after MOVE")
    r.sp("mailbox name after the sequence set")
    return Move(r.tag, uid, sequence_set, r.mailbox())  # RFC 6851 §3


def parse_expunge(r: Reader, uid: bool) -> Expunge:
    if not uid:
        return Expunge(r.tag)
    r.sp("UID set after UID EXPUNGE")
    return Expunge(r.tag, r.sequence_set("UID set after UID EXPUNGE"))  # RFC 4315 §2.1
