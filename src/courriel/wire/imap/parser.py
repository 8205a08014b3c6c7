"""Command dispatch, and the parsers of the commands whose arguments are simple.

Theory of operation
-------------------
``parse_command`` reads the tag (RFC 9051 §9 ``tag``: ASTRING-CHAR except ``+``), the command
name (case-insensitive) and, after ``UID``, the command it applies to; it then calls the one
parse function registered for that name in ``COMMANDS`` (or ``UID_COMMANDS``) and checks that
nothing is left. Parse functions take ``(reader, uid)`` and return a command record; the bigger
ones live in ``parse_*.py`` beside this module.

A line whose tag cannot be read is answered with an untagged ``* BAD``; everything else that is
wrong is a tagged ``BAD`` naming what was expected.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from courriel.wire.errors import ProtocolError
from courriel.wire.imap.commands import (
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Delete,
    Enable,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    Login,
    Logout,
    Namespace,
    Noop,
    Rename,
    SetQuota,
    StartTLS,
    Subscribe,
    Unauthenticate,
    Unselect,
    Unsubscribe,
)
from courriel.wire.imap.lexer import ATOM_RE, TAG_RE, Limits, Reader
from courriel.wire.imap.parse_acl import ACL_COMMANDS
from courriel.wire.imap.parse_append import parse_append, parse_replace
from courriel.wire.imap.parse_fetch import parse_fetch
from courriel.wire.imap.parse_mailbox import (
    parse_create,
    parse_examine,
    parse_list,
    parse_lsub,
    parse_select,
    parse_status,
)
from courriel.wire.imap.parse_metadata import METADATA_COMMANDS
from courriel.wire.imap.parse_notify import parse_notify
from courriel.wire.imap.parse_search import parse_search
from courriel.wire.imap.parse_selected import parse_copy, parse_expunge, parse_move, parse_store
from courriel.wire.imap.parse_sort import parse_cancelupdate, parse_sort, parse_thread
from courriel.wire.imap.parse_urlauth import URLAUTH_COMMANDS

Parse = Callable[[Reader, bool], Command]
_BASE64_RE = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
_SASL_IR_RE = re.compile(rb"[A-Za-z0-9+/=]+")
MAX_ID_PAIRS = 30  # RFC 2971 §3.3


def decode_base64(data: bytes) -> bytes | None:
    """Strict base64 (RFC 4648 §4, padding required), or None."""
    if not _BASE64_RE.match(data):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _bare(cls: Callable[[str], Command]) -> Parse:
    return lambda r, uid: cls(r.tag)


def _authenticate(r: Reader, uid: bool) -> Authenticate:
    r.sp("SASL mechanism after AUTHENTICATE")
    mechanism = r.keyword("SASL mechanism after AUTHENTICATE")
    initial: bytes | None = None
    if r.maybe_sp():  # RFC 4959 §3: SASL-IR, "=" for an empty response
        token = r.match(_SASL_IR_RE)
        if token is None:
            r.fail("Expected base64 initial response")
        decoded = b"" if token == b"=" else decode_base64(token)
        if decoded is None:
            r.fail("Invalid base64 in the initial response")
        initial = decoded
    return Authenticate(r.tag, mechanism, initial)


def _login(r: Reader, uid: bool) -> Login:
    r.sp("user name after LOGIN")
    user = r.astring_text("user name")
    r.sp("password after the user name")
    return Login(r.tag, user, r.astring_text("password"))


def _enable(r: Reader, uid: bool) -> Enable:
    r.sp("capability after ENABLE")
    caps = [r.keyword("capability after ENABLE")]
    while r.maybe_sp():
        caps.append(r.keyword("capability"))
    return Enable(r.tag, tuple(caps))


def _id(r: Reader, uid: bool) -> Id:
    r.sp("parameter list or NIL after ID")
    if r.peek() != 0x28:
        if r.keyword("parameter list or NIL after ID") != "NIL":
            r.fail("Expected parameter list or NIL after ID")
        return Id(r.tag, None)
    r.open_paren("'(' to start ID parameters")
    pairs: list[tuple[str, str | None]] = []
    if r.peek() != 0x29:
        while True:
            key = r.text(r.string("ID field name"), "ID field name")
            r.sp("ID field value")
            value = r.nstring("ID field value")
            pairs.append((key, None if value is None else r.text(value, "ID field value")))
            if len(pairs) > MAX_ID_PAIRS:
                r.fail(f"Too many ID fields (limit {MAX_ID_PAIRS})")  # RFC 2971 §3.3
            if not r.maybe_sp():
                break
    r.close_paren("')' to end ID parameters")
    return Id(r.tag, tuple(pairs))


def _one_mailbox(cls: Callable[[str, str], Command], name: str) -> Parse:
    def parse(r: Reader, uid: bool) -> Command:
        r.sp(f"mailbox name after {name}")
        return cls(r.tag, r.mailbox())

    return parse


def _rename(r: Reader, uid: bool) -> Rename:
    r.sp("mailbox name after RENAME")
    old = r.mailbox()
    r.sp("new mailbox name")
    return Rename(r.tag, old, r.mailbox("new mailbox name"))


def _compress(r: Reader, uid: bool) -> Compress:
    r.sp("compression mechanism after COMPRESS")
    return Compress(r.tag, r.keyword("compression mechanism after COMPRESS"))


def _getquota(r: Reader, uid: bool) -> GetQuota:
    r.sp("quota root after GETQUOTA")
    return GetQuota(r.tag, r.astring_text("quota root"))


def _setquota(r: Reader, uid: bool) -> SetQuota:
    r.sp("quota root after SETQUOTA")
    root = r.astring_text("quota root")
    r.sp("'(' after the quota root")
    r.open_paren("'(' after the quota root")
    limits: list[tuple[str, int]] = []
    if r.peek() != 0x29:
        while True:
            resource = r.keyword("quota resource name")
            r.sp("limit after the resource name")
            limits.append((resource, r.number("quota limit", bits=64)))  # RFC 9208 §4.1.3
            if not r.maybe_sp():
                break
    r.close_paren("')' to end the quota limits")
    return SetQuota(r.tag, root, tuple(limits))


COMMANDS: dict[str, Parse] = {
    "CAPABILITY": _bare(Capability),
    "NOOP": _bare(Noop),
    "LOGOUT": _bare(Logout),
    "ID": _id,
    "STARTTLS": _bare(StartTLS),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": parse_select,
    "EXAMINE": parse_examine,
    "CREATE": parse_create,
    "DELETE": _one_mailbox(Delete, "DELETE"),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(Subscribe, "SUBSCRIBE"),
    "UNSUBSCRIBE": _one_mailbox(Unsubscribe, "UNSUBSCRIBE"),
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "NAMESPACE": _bare(Namespace),
    "STATUS": parse_status,
    "APPEND": parse_append,
    "IDLE": _bare(Idle),
    "UNAUTHENTICATE": _bare(Unauthenticate),  # RFC 8437
    "COMPRESS": _compress,
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _one_mailbox(GetQuotaRoot, "GETQUOTAROOT"),
    "SETQUOTA": _setquota,
    "CHECK": _bare(Check),
    "CLOSE": _bare(Close),
    "UNSELECT": _bare(Unselect),
    "EXPUNGE": parse_expunge,
    "SEARCH": parse_search,
    "SORT": parse_sort,  # RFC 5256 §3
    "THREAD": parse_thread,
    "CANCELUPDATE": parse_cancelupdate,  # RFC 5267 §4.3
    "REPLACE": parse_replace,  # RFC 8508
    "FETCH": parse_fetch,
    "STORE": parse_store,
    "COPY": parse_copy,
    "MOVE": parse_move,
    **ACL_COMMANDS,
    **METADATA_COMMANDS,
    "NOTIFY": parse_notify,
    **URLAUTH_COMMANDS,
}
# RFC 9051 §6.4.9 UID; EXPUNGE from RFC 4315 §2.1, MOVE from RFC 6851 §3.2, SORT and THREAD
# from RFC 5256 §3, REPLACE from RFC 8508 §3.4
UID_COMMANDS: dict[str, Parse] = {
    name: COMMANDS[name]
    for name in ("FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE", "SORT", "THREAD", "REPLACE")
}


def read_tag(line: bytes) -> str | None:
    m = TAG_RE.match(line)
    if m is None or (m.end() < len(line) and line[m.end()] != 0x20):
        return None
    return m.group().decode("ascii")


def _name(r: Reader, what: str) -> str:
    token = r.match(ATOM_RE)
    if token is None:
        r.fail(f"Expected {what}")
    return token.decode("ascii").upper()


def parse_command(
    texts: list[bytes], literals: list[bytes], *, limits: Limits, utf8: bool
) -> Command:
    """One complete command (see ``Reader``) as a record, or ``ProtocolError``."""
    tag = read_tag(texts[0])
    if tag is None:
        raise ProtocolError(b"* BAD Invalid or missing tag\r\n")
    r = Reader(texts, literals, tag, limits, utf8)
    r.seek(len(tag))
    r.sp("command name after the tag")
    name = _name(r, "command name after the tag")
    uid = name == "UID"
    if uid:
        r.sp("command name after UID")
        name = _name(r, "command name after UID")
        parse = UID_COMMANDS.get(name)
        if parse is None:
            r.fail(f"Unknown command UID {name}")
    else:
        parse = COMMANDS.get(name)
        if parse is None:
            r.fail(f"Unknown command {name}")
    command = parse(r, uid)
    r.end()
    return command
