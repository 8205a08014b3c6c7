"""Response encoder: typed values in, exact IMAP bytes out (RFC 9051 §7).

Theory of operation
-------------------
Every function returns complete ``bytes`` ending in CRLF (or, for ``code_*`` and ``item_*``, a
piece to put inside one), so a session builds a reply by concatenation and writes each command's
output at once. Response codes are passed to ``tagged``/``untagged`` as pre-built pieces:
the constants below for the bare ones (``TRYCREATE``), small functions for those with data
(``uidnext(5)``). FETCH responses are assembled from pre-encoded items — ENVELOPE and
BODYSTRUCTURE come already encoded from the message's stored parse — with one join.

Numbers are written with ``str``; sets of UIDs are compressed (``1:3,5``); mailbox names are
modified UTF-7 or UTF-8 following ``utf8`` (the connection's ``utf8`` property).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from courriel.wire.imap.dates import format_date_time
from courriel.wire.imap.sequence import compress
from courriel.wire.imap.sort import ThreadForest
from courriel.wire.imap.strings import astring, mailbox, nstring, string

CRLF = b"\r\n"

# RFC 9051 §7.1 and extensions: response codes without data
ALERT = b"ALERT"
ALREADYEXISTS = b"ALREADYEXISTS"
AUTHENTICATIONFAILED = b"AUTHENTICATIONFAILED"
AUTHORIZATIONFAILED = b"AUTHORIZATIONFAILED"
CANNOT = b"CANNOT"
CLIENTBUG = b"CLIENTBUG"
CLOSED = b"CLOSED"  # RFC 7162 §3.2.11
COMPRESSIONACTIVE = b"COMPRESSIONACTIVE"  # RFC 4978 §3
CONTACTADMIN = b"CONTACTADMIN"
CORRUPTION = b"CORRUPTION"
EXPUNGEISSUED = b"EXPUNGEISSUED"
HASCHILDREN = b"HASCHILDREN"
INUSE = b"INUSE"
LIMIT = b"LIMIT"
NOMODSEQ = b"NOMODSEQ"  # RFC 7162 §3.1.2
NONEXISTENT = b"NONEXISTENT"
NOPERM = b"NOPERM"
OVERQUOTA = b"OVERQUOTA"
PARSE = b"PARSE"
PRIVACYREQUIRED = b"PRIVACYREQUIRED"
READ_ONLY = b"READ-ONLY"
READ_WRITE = b"READ-WRITE"
SERVERBUG = b"SERVERBUG"
TOOBIG = b"TOOBIG"
TRYCREATE = b"TRYCREATE"
UIDNOTSTICKY = b"UIDNOTSTICKY"
UNAVAILABLE = b"UNAVAILABLE"
UNKNOWN_CTE = b"UNKNOWN-CTE"  # RFC 3516 §4.3
USEATTR = b"USEATTR"  # RFC 6154 §6


def _n(value: int) -> bytes:
    return str(value).encode("ascii")


def _ordered_runs(numbers: Sequence[int]) -> bytes:
    """``5:7,9`` keeping the given order (COPYUID sets must correspond pairwise)."""
    out: list[bytes] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(_n(numbers[i]) if i == j else _n(numbers[i]) + b":" + _n(numbers[j]))
        i = j + 1
    return b",".join(out)


# --- response codes with data -----------------------------------------------------------------


def uidnext(n: int) -> bytes:
    return b"UIDNEXT " + _n(n)


def uidvalidity(n: int) -> bytes:
    return b"UIDVALIDITY " + _n(n)


def highestmodseq(n: int) -> bytes:
    return b"HIGHESTMODSEQ " + _n(n)  # RFC 7162 §3.1.2.1


def appenduid(uidvalidity: int, uids: Sequence[int]) -> bytes:
    return b"APPENDUID " + _n(uidvalidity) + b" " + _ordered_runs(uids)  # RFC 4315 §3


def copyuid(uidvalidity: int, pairs: Iterable[tuple[int, int]]) -> bytes:
    """RFC 4315 §3: source and destination sets in corresponding order."""
    ordered = sorted(pairs)
    src = _ordered_runs([s for s, _ in ordered])
    dst = _ordered_runs([d for _, d in ordered])
    return b"COPYUID " + _n(uidvalidity) + b" " + src + b" " + dst


def modified(numbers: Iterable[int]) -> bytes:
    return b"MODIFIED " + compress(numbers)  # RFC 7162 §3.1.3


def permanentflags(flags: Iterable[str], *, new_keywords: bool = True) -> bytes:
    items = [f.encode("utf-8") for f in flags]
    if new_keywords:
        items.append(b"\\*")
    return b"PERMANENTFLAGS (" + b" ".join(items) + b")"


def capability_code(capabilities: Iterable[str]) -> bytes:
    return b"CAPABILITY " + " ".join(capabilities).encode("ascii")


def badcharset(charsets: Iterable[str]) -> bytes:
    return b"BADCHARSET (" + b" ".join(astring(c) for c in charsets) + b")"


# --- status responses -------------------------------------------------------------------------


def tagged(tag: str, status: str, text: str, code: bytes | None = None) -> bytes:
    head = tag.encode("ascii") + b" " + status.encode("ascii") + b" "
    if code is not None:
        head += b"[" + code + b"] "
    return head + text.encode("utf-8") + CRLF


def ok(tag: str, text: str = "completed", code: bytes | None = None) -> bytes:
    return tagged(tag, "OK", text, code)


def no(tag: str, text: str, code: bytes | None = None) -> bytes:
    return tagged(tag, "NO", text, code)


def bad(tag: str, text: str, code: bytes | None = None) -> bytes:
    return tagged(tag, "BAD", text, code)


def untagged(status: str, text: str, code: bytes | None = None) -> bytes:
    """``* OK [code] text``, ``* NO``, ``* BAD``, ``* BYE`` or ``* PREAUTH``."""
    return tagged("*", status, text, code)


def continuation(text: str = "") -> bytes:
    return b"+ " + text.encode("utf-8") + CRLF if text else b"+ \r\n"


# --- untagged data ----------------------------------------------------------------------------


def capability(capabilities: Iterable[str]) -> bytes:
    return b"* " + capability_code(capabilities) + CRLF


def exists(n: int) -> bytes:
    return b"* " + _n(n) + b" EXISTS\r\n"


def recent(n: int) -> bytes:
    return b"* " + _n(n) + b" RECENT\r\n"  # RFC 3501 §7.3.2, IMAP4rev1 clients only


def expunge(seq: int) -> bytes:
    return b"* " + _n(seq) + b" EXPUNGE\r\n"


def vanished(uids: Iterable[int], *, earlier: bool = False) -> bytes:
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "  # RFC 7162 §3.2.10
    return head + compress(uids) + CRLF


def flags(names: Iterable[str]) -> bytes:
    return b"* FLAGS (" + " ".join(names).encode("utf-8") + b")\r\n"


def _list_line(
    kind: bytes,
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    utf8: bool,
    extra: bytes,
) -> bytes:
    delim = b"NIL" if delimiter is None else string(delimiter)
    attrs = " ".join(attributes).encode("ascii")
    return b"".join(
        (b"* ", kind, b" (", attrs, b") ", delim, b" ", mailbox(name, utf8=utf8), extra, CRLF)
    )


def list_item(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    *,
    utf8: bool = False,
    childinfo: bool = False,
    oldname: str | None = None,
) -> bytes:
    """One LIST response; ``childinfo`` adds CHILDINFO ("SUBSCRIBED") (RFC 5258 §3.5)."""
    ext: list[bytes] = []
    if childinfo:
        ext.append(b'"CHILDINFO" ("SUBSCRIBED")')
    if oldname is not None:
        ext.append(b'"OLDNAME" (' + mailbox(oldname, utf8=utf8) + b")")  # RFC 9051 §7.3.1
    extra = b" (" + b" ".join(ext) + b")" if ext else b""
    return _list_line(b"LIST", attributes, delimiter, name, utf8, extra)


def lsub_item(
    attributes: Iterable[str], delimiter: str | None, name: str, *, utf8: bool = False
) -> bytes:
    return _list_line(b"LSUB", attributes, delimiter, name, utf8, b"")


def status(name: str, items: Sequence[tuple[str, int | bytes]], *, utf8: bool = False) -> bytes:
    """``* STATUS name (MESSAGES 3 ...)``; a bytes value goes as it is (``MAILBOXID (M1)``)."""
    body = b" ".join(
        k.encode("ascii") + b" " + (v if isinstance(v, bytes) else _n(v)) for k, v in items
    )
    return b"* STATUS " + mailbox(name, utf8=utf8) + b" (" + body + b")\r\n"


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    body = b"".join(b" " + _n(n) for n in numbers)
    tail = b" (MODSEQ " + _n(modseq) + b")" if modseq is not None else b""  # RFC 7162 §3.1.5
    return b"* SEARCH" + body + tail + CRLF


def sort(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SORT 2 3 1`` (RFC 5256 §4), in the sorted order; ``(MODSEQ n)`` as for SEARCH."""
    body = b"".join(b" " + _n(n) for n in numbers)
    tail = b" (MODSEQ " + _n(modseq) + b")" if modseq is not None else b""  # RFC 7162 §3.1.5
    return b"* SORT" + body + tail + CRLF


def thread(forest: ThreadForest) -> bytes:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` (RFC 5256 §4).

    A node with one child is followed by it in the same list; several children each get
    their own parentheses; a placeholder node (number 0) contributes its children only.
    Written with a stack: a thread may be as deep as the mailbox is long.
    """
    out = [b"* THREAD"]
    if forest.roots:
        out.append(b" ")
    number, first, after = forest.number, forest.first_child, forest.next_sibling
    work: list[int | bytes] = []
    for root in reversed(forest.roots):
        work += (b")", root, b"(")
    while work:
        item = work.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        n = number[item]
        child = first[item]
        if n:
            out.append(_n(n))
            if child >= 0:
                out.append(b" ")
        if child >= 0 and after[child] < 0:
            work.append(child)  # an only child continues the list
            continue
        kids: list[int | bytes] = []
        while child >= 0:
            kids += (b"(", child, b")")
            child = after[child]
        work += reversed(kids)
    out.append(CRLF)
    return b"".join(out)


def esearch(
    tag: str,
    *,
    uid: bool,
    minimum: int | None = None,
    maximum: int | None = None,
    all_numbers: Iterable[int] | None = None,
    count: int | None = None,
    modseq: int | None = None,
    in_order: bool = False,
    partial: tuple[tuple[int, int], Sequence[int]] | None = None,
) -> bytes:
    """RFC 4731 §3.1: only the results asked for; ALL is left out when nothing matched.

    ``in_order`` keeps the order of ``all_numbers`` (ESORT, RFC 5267 §3.2: ALL in sort order).
    ``partial`` is the range asked for and the numbers in it (RFC 9394 §3.1, RFC 5267 §4.4).
    """
    out = [b"* ESEARCH (TAG ", string(tag), b")"]
    if uid:
        out.append(b" UID")
    if minimum is not None:
        out += (b" MIN ", _n(minimum))
    if maximum is not None:
        out += (b" MAX ", _n(maximum))
    if all_numbers is not None:
        ranges = _ordered_runs(list(all_numbers)) if in_order else compress(all_numbers)
        if ranges:
            out += (b" ALL ", ranges)
    if count is not None:
        out += (b" COUNT ", _n(count))
    if partial is not None:
        (first, last), numbers = partial
        found = _ordered_runs(list(numbers)) if in_order else compress(numbers)
        out += (b" PARTIAL (", str(first).encode(), b":", str(last).encode(), b" ")
        out += (found or b"NIL", b")")  # RFC 9394 §3.1: NIL when no result is in the range
    if modseq is not None:
        out += (b" MODSEQ ", _n(modseq))
    out.append(CRLF)
    return b"".join(out)


def esearch_update(
    tag: str, *, uid: bool, kind: str, position: int, numbers: Sequence[int], in_order: bool
) -> bytes:
    """``* ESEARCH (TAG "t") UID ADDTO (0 5:7)`` or ``REMOVEFROM`` (RFC 5267 §4.3): a change
    to the result of a search context; ``position`` is 0 for SEARCH, 1-based for SORT."""
    found = _ordered_runs(list(numbers)) if in_order else compress(numbers)
    out = [b"* ESEARCH (TAG ", string(tag), b")", b" UID" if uid else b""]
    out += (b" ", kind.encode("ascii"), b" (", _n(position), b" ", found, b")", CRLF)
    return b"".join(out)


def _namespace_list(spaces: Sequence[tuple[str, str | None]] | None, utf8: bool) -> bytes:
    if not spaces:
        return b"NIL"
    parts = (
        b"(" + string(prefix, utf8=utf8) + b" " + nstring(delim) + b")" for prefix, delim in spaces
    )
    return b"(" + b"".join(parts) + b")"


def namespace(
    personal: Sequence[tuple[str, str | None]] | None,
    other: Sequence[tuple[str, str | None]] | None = None,
    shared: Sequence[tuple[str, str | None]] | None = None,
    *,
    utf8: bool = False,
) -> bytes:
    lists = (_namespace_list(ns, utf8) for ns in (personal, other, shared))
    return b"* NAMESPACE " + b" ".join(lists) + CRLF  # RFC 9051 §7.3.5


def id_response(params: Sequence[tuple[str, str | None]] | None) -> bytes:
    if not params:
        return b"* ID NIL\r\n"  # RFC 2971 §3.2
    body = b" ".join(string(k) + b" " + nstring(v) for k, v in params)
    return b"* ID (" + body + b")\r\n"


def enabled(capabilities: Iterable[str]) -> bytes:
    body = b"".join(b" " + c.encode("ascii") for c in capabilities)
    return b"* ENABLED" + body + CRLF  # RFC 5161 §3.2


def quota(root: str, resources: Sequence[tuple[str, int, int]]) -> bytes:
    """RFC 9208 §5.1: (resource name, usage, limit) triples."""
    body = b" ".join(r.encode("ascii") + b" " + _n(u) + b" " + _n(lim) for r, u, lim in resources)
    return b"* QUOTA " + astring(root) + b" (" + body + b")\r\n"


def quotaroot(name: str, roots: Iterable[str], *, utf8: bool = False) -> bytes:
    body = b"".join(b" " + astring(r, utf8=utf8) for r in roots)
    return b"* QUOTAROOT " + mailbox(name, utf8=utf8) + body + CRLF  # RFC 9208 §5.2


# --- FETCH ------------------------------------------------------------------------------------


def fetch(seq: int, items: Sequence[bytes]) -> bytes:
    """``* seq FETCH (item item ...)`` from pre-encoded items, in one join."""
    return b"".join((b"* ", _n(seq), b" FETCH (", b" ".join(items), b")\r\n"))


def uidfetch(uid: int, items: Sequence[bytes]) -> bytes:
    """``* uid UIDFETCH (item ...)`` (RFC 9586 §3.3), the FETCH response once UIDONLY is on."""
    return b"".join((b"* ", _n(uid), b" UIDFETCH (", b" ".join(items), b")\r\n"))


def item_uid(uid: int) -> bytes:
    return b"UID " + _n(uid)


def item_modseq(modseq: int) -> bytes:
    return b"MODSEQ (" + _n(modseq) + b")"  # RFC 7162 §3.1.4.1


def item_flags(names: Iterable[str]) -> bytes:
    return b"FLAGS (" + " ".join(names).encode("utf-8") + b")"


def item_internaldate(when: datetime) -> bytes:
    return b"INTERNALDATE " + format_date_time(when)


def item_savedate(when: datetime | None) -> bytes:
    """RFC 8514 §3: NIL when the server does not know when the message was saved."""
    return b"SAVEDATE " + (b"NIL" if when is None else format_date_time(when))


def item_objectid(name: bytes, objectid: str | None) -> bytes:
    """``EMAILID (M6d99ac3275bb4e)``, or ``THREADID NIL`` (RFC 8474 §5, §7)."""
    value = b"NIL" if objectid is None else b"(" + objectid.encode("ascii") + b")"
    return name + b" " + value


def item_preview(text: str | None) -> bytes:
    """RFC 8970 §3: UTF-8 text, as a literal where it is not ASCII."""
    return b"PREVIEW " + nstring(text)


def item_rfc822_size(size: int) -> bytes:
    return b"RFC822.SIZE " + _n(size)


def item_section(name: bytes, data: bytes | None) -> bytes:
    """``BODY[...] {n}`` + data (or NIL); ``name`` from ``FetchBody.response_name``.

    A literal cannot carry NUL (RFC 9051 §4.3); the rare broken message that holds one is sent
    with NUL replaced by 0x80, keeping every size and offset the client was told.
    """
    if data is None:
        return name + b" NIL"
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x80")
    return b"".join((name, b" {", _n(len(data)), b"}\r\n", data))


def item_binary(name: bytes, data: bytes | None) -> bytes:
    """``BINARY[...]``: a literal8 when the decoded data holds NUL (RFC 3516 §4.2)."""
    if data is None:
        return name + b" NIL"
    marker = b" ~{" if b"\x00" in data else b" {"
    return b"".join((name, marker, _n(len(data)), b"}\r\n", data))


def item_binary_size(name: bytes, size: int) -> bytes:
    return name + b" " + _n(size)


def item_raw(name: bytes, encoded: bytes) -> bytes:
    """``ENVELOPE (...)`` or ``BODYSTRUCTURE (...)`` from their pre-encoded form."""
    return name + b" " + encoded
