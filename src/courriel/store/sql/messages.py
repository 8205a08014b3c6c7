"""Transaction scripts for messages: append, flags, expunge, copy, move and the reads for sync.

Theory of operation
-------------------
Each write allocates with one ``UPDATE mailboxes ... RETURNING`` per mailbox it changes, so all
messages a call changes in a mailbox share one new MODSEQ, and UIDs come out gap-free. Flag
changes follow RFC 7162: a message whose MODSEQ is above UNCHANGEDSINCE is left alone and
reported in ``modified``; a change that changes nothing keeps its MODSEQ and is not reported.
Expunges are logged with their MODSEQ for VANISHED. Copies and moves keep flags and internal
date and number the new messages in ascending source UID order (RFC 4315 §3); made by a user in
or out of another user's mailbox, they carry that user's own \\Seen instead, and appends too
(``seen_user``, ``seen.CopyFlags``), in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from courriel.mail import searchtext, sortkeys
from courriel.mail.message import MetaFormatError, search_fields_of
from courriel.store.base import (
    Appended,
    Change,
    ChangeKind,
    Copied,
    Expunged,
    FlagOp,
    FlagsResult,
    MessageExtras,
    MessageInfo,
    NewMessage,
    NotFound,
)
from courriel.store.sql import seen
from courriel.store.sql.core import (
    DELETED,
    MAX_UID,
    MESSAGE_COLS,
    ROWS_PER_INSERT,
    Done,
    Query,
    Row,
    Rows,
    Script,
    add_usage,
    adjust_blobs,
    allocate,
    charge,
    date_of,
    delete_messages,
    encode_flags,
    forget_messages,
    insert_rows,
    lock_mailbox,
    log_expunges,
    message_info,
    normalise_flags,
    range_filters,
    reference_blobs,
    select_messages,
    uid_ranges,
)

_INSERT_COLS = (
    "mailbox_id", "uid", "modseq", "sysflags", "keywords", "internal_date", "size", "blob_id",
    "meta", "sort_keys", "savedate",
)  # fmt: skip
_SEARCH_COLS = ("hdr_subject", "hdr_from", "hdr_to", "hdr_cc", "hdr_bcc")  # STORED_FIELDS
_SEARCH_COLUMN = dict(zip(searchtext.STORED_FIELDS, _SEARCH_COLS, strict=True))
SearchTexts = tuple[str | None, ...]  # ``searchtext.stored_texts``, one per _SEARCH_COLS


def append(
    items: Sequence[tuple[int, NewMessage, str]],
    inline: dict[str, bytes] | None = None,
    now: datetime | None = None,
    derived: Sequence[tuple[str | None, SearchTexts | None]] | None = None,
    *,
    claim_recent: bool = False,
    seen_user: int | None = None,
) -> Script[Done[list[Appended]]]:
    """Stores (mailbox id, message, blob id) triples; with ``claim_recent``, raises each
    mailbox's claimed \\Recent UID to its last new one (``recent.claim_recent``), which no
    other session can have claimed: the UIDs are new.

    ``derived`` are the messages' SORT keys and search texts (``derived_of``), made before
    the transaction so it stays short; made here when not given.

    ``seen_user``: on a mailbox another user owns, a message's \\Seen is this user's own, kept
    as their row (``seen.new_seen_rows``) in this transaction, and not the owner's flag.

    Bodies in ``inline`` (blob id -> bytes) are stored in this transaction; the others are files
    made durable before it (``Done.new_files`` lists those that must be checked).
    """
    by_box: dict[int, list[int]] = {}
    for i, (mailbox_id, _, _) in enumerate(items):
        by_box.setdefault(mailbox_id, []).append(i)
    results: list[Appended | None] = [None] * len(items)
    rows: list[Row] = []
    search_rows: list[Row] = []
    changes = []
    usage: dict[int, tuple[int, int]] = {}
    saved = None if now is None else now.isoformat()  # SAVEDATE, RFC 8514
    private: dict[int, list[int]] = {}  # mailbox id -> UIDs given seen_user's \\Seen
    for mailbox_id in sorted(by_box):  # lock order: mailboxes by id
        indexes = by_box[mailbox_id]
        user_id, uidvalidity, first, modseq = yield from allocate(mailbox_id, len(indexes))
        for uid, i in enumerate(indexes, first):
            _, msg, blob_id = items[i]
            flags = normalise_flags(msg.flags)
            if seen_user is not None and user_id != seen_user and "\\Seen" in flags:
                flags -= {"\\Seen"}
                private.setdefault(mailbox_id, []).append(uid)
            bits, keywords = encode_flags(flags)
            date = msg.internal_date.isoformat()
            key, texts = derived[i] if derived is not None else _derived(msg)
            rows.append(
                (
                    *(mailbox_id, uid, modseq, bits, keywords, date, len(msg.raw), blob_id),
                    *(msg.meta, key, saved),
                )
            )
            if texts is not None:
                search_rows.append((mailbox_id, uid, *texts))
            results[i] = Appended(mailbox_id, uidvalidity, uid, modseq)
            add_usage(usage, user_id, len(msg.raw), 1)
        uids = tuple(range(first, first + len(indexes)))
        if claim_recent:
            yield Query(
                "UPDATE mailboxes SET recent_uid = ? WHERE id = ? AND recent_uid < ?",
                (uids[-1], mailbox_id, uids[-1]),
                False,
            )
        changes.append(Change(user_id, mailbox_id, ChangeKind.MESSAGES_ADDED, modseq, uids))
    blobs = Counter(items[i][2] for i in range(len(items)))
    sizes = {item[2]: len(item[1].raw) for item in items}
    new_files, stranded = yield from reference_blobs(dict(blobs), sizes, inline or {})
    yield from insert_rows("messages", _INSERT_COLS, rows)
    yield from insert_rows("message_search", ("mailbox_id", "uid", *_SEARCH_COLS), search_rows)
    if seen_user is not None:
        for mailbox_id, uids_seen in private.items():
            yield from seen.new_seen_rows(mailbox_id, seen_user, uids_seen)
    yield from charge(usage)
    return Done([r for r in results if r is not None], tuple(changes), stranded, new_files)


def _derived(msg: NewMessage) -> tuple[str | None, SearchTexts | None]:
    """The SORT keys and the search texts of ``msg``, from one read of its parse's fields."""
    if not msg.meta:
        return None, None
    return derived_from_meta(msg.meta)


def derived_from_meta(meta: bytes) -> tuple[str | None, SearchTexts | None]:
    """``sortkeys.encoded_keys_of`` and ``searchtext.stored_texts`` of a stored parse; None
    for both when it cannot be read."""
    try:
        fields = search_fields_of(meta)
    except MetaFormatError:
        return None, None
    keys = sortkeys.encode(sortkeys.keys_of_fields(fields))
    return keys, searchtext.stored_texts(fields.text_headers)


def replace(
    items: Sequence[tuple[int, NewMessage, str]],
    inline: dict[str, bytes],
    now: datetime,
    derived: Sequence[tuple[str | None, SearchTexts | None]],
    mailbox_id: int,
    uid: int,
    seen_user: int | None = None,
) -> Script[Done[tuple[list[Appended], list[Expunged]]]]:
    """RFC 8508 REPLACE in one transaction: the new message appended (``seen_user`` as for
    ``append``), the old one expunged."""
    for box in sorted({mailbox_id, *(item[0] for item in items)}):  # lock order: by id
        yield from lock_mailbox(box)
    added = yield from append(items, inline, now, derived, seen_user=seen_user)
    gone = yield from expunge(mailbox_id, [uid])
    changes = added.changes + gone.changes
    freed = gone.freed_blobs + added.freed_blobs
    return Done((added.value, gone.value), changes, freed, added.new_files)


def derived_of(
    items: Sequence[tuple[int, NewMessage]],
) -> list[tuple[str | None, SearchTexts | None]]:
    """The SORT keys and search texts of messages about to be appended (see ``append``)."""
    return [_derived(msg) for _, msg in items]


def list_messages(mailbox_id: int, uid_from: int, uid_to: int | None) -> Script[list[MessageInfo]]:
    rows = yield Query(
        f"SELECT {MESSAGE_COLS} FROM messages"  # noqa: S608
        " WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
        (mailbox_id, uid_from, MAX_UID if uid_to is None else uid_to),
    )
    return [message_info(r) for r in rows]


def get_meta(mailbox_id: int, uids: Sequence[int]) -> Script[dict[int, bytes]]:
    rows = yield from select_messages(mailbox_id, "uid, meta", uid_ranges(uids))
    return {r[0]: bytes(r[1]) for r in rows}


def set_meta(mailbox_id: int, parsed: dict[int, bytes]) -> Script[Done[None]]:
    """Keeps the parse made for messages stored without one (``SqlStore.get_meta``); a message
    expunged meanwhile has no row to update. Not a change a session hears of: the message is
    the same, only read faster."""
    return (yield from _set_each("meta", mailbox_id, parsed))


def sort_keys(mailbox_id: int, uid_from: int) -> Script[list[tuple[int, str | None]]]:
    """The stored SORT and THREAD keys from ``uid_from`` on, by UID; None where not yet made."""
    rows = yield Query(
        "SELECT uid, sort_keys FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
        (mailbox_id, uid_from),
    )
    return [(r[0], r[1]) for r in rows]


def fill_sort_keys(mailbox_id: int, uids: Sequence[int]) -> Script[Done[dict[int, str]]]:
    """Makes the keys of messages stored before they existed (migration 0017) from their parse.

    A parse that cannot be read gets "" (no keys: every key empty), so it is not read again.
    """
    rows = yield from select_messages(mailbox_id, "uid, meta, sort_keys", uid_ranges(uids))
    made: dict[int, str] = {}
    for uid, meta, old in rows:
        if old is not None:  # filled by another session meanwhile
            made[uid] = old
            continue
        made[uid] = sortkeys.encoded_keys_of(bytes(meta)) or ""
        yield Query(
            "UPDATE messages SET sort_keys = ? WHERE mailbox_id = ? AND uid = ?",
            (made[uid], mailbox_id, uid),
            False,
        )
    return Done(made)


def _like(needle: str) -> str:
    """A LIKE pattern finding ``needle`` anywhere, with backslash as the escape."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_headers(
    mailbox_id: int, keys: Sequence[tuple[str, str]]
) -> Script[tuple[list[set[int]], list[int]]]:
    """For each (field of ``STORED_FIELDS``, folded needle) the UIDs whose stored text holds
    the needle, and the UIDs of the messages that have no search row yet.

    LIKE only narrows the rows (SQLite's ignores ASCII case); the needle is then looked for in
    the stored text itself, which is what decides. Every search row has its message (the
    foreign key), so equal counts mean no message lacks one, and the slower join that finds
    those runs only when they differ.
    """
    cols = sorted({_SEARCH_COLUMN[name] for name, _ in keys})
    where = " OR ".join(f"{_SEARCH_COLUMN[name]} LIKE ? ESCAPE '\\'" for name, _ in keys)
    rows = yield Query(
        f"SELECT uid, {', '.join(cols)} FROM message_search"  # noqa: S608 - constant names
        f" WHERE mailbox_id = ? AND ({where})",
        (mailbox_id, *(_like(needle) for _, needle in keys)),
    )
    hits: list[set[int]] = [set() for _ in keys]
    at = [1 + cols.index(_SEARCH_COLUMN[name]) for name, _ in keys]
    for row in rows:
        for found, (_, needle), i in zip(hits, keys, at, strict=True):
            text = row[i]
            if text is not None and needle in text:
                found.add(row[0])
    counts = yield Query(
        "SELECT (SELECT count(*) FROM messages WHERE mailbox_id = ?),"
        " (SELECT count(*) FROM message_search WHERE mailbox_id = ?)",
        (mailbox_id, mailbox_id),
    )
    if counts[0][0] == counts[0][1]:
        return hits, []
    unmade = yield Query(
        "SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND NOT EXISTS"
        " (SELECT 1 FROM message_search s WHERE s.mailbox_id = m.mailbox_id AND s.uid = m.uid)"
        " ORDER BY m.uid",
        (mailbox_id,),
    )
    return hits, [r[0] for r in unmade]


def fill_search(mailbox_id: int, texts: dict[int, SearchTexts]) -> Script[Done[None]]:
    """Adds the search rows made for messages that had none (see ``search_headers``); a
    message expunged meanwhile or given its row by another session is left alone."""
    marks = ", ".join("?" * (len(_SEARCH_COLS) + 2))
    for uid, row in sorted(texts.items()):
        yield Query(
            f"INSERT INTO message_search (mailbox_id, uid, {', '.join(_SEARCH_COLS)})"  # noqa: S608
            f" SELECT {marks} WHERE EXISTS"
            " (SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ?)"
            " ON CONFLICT DO NOTHING",
            (mailbox_id, uid, *row, mailbox_id, uid),
            False,
        )
    return Done(None)


def extras(mailbox_id: int, uids: Sequence[int]) -> Script[dict[int, MessageExtras]]:
    cols = "uid, blob_id, savedate, sort_keys, preview"
    rows = yield from select_messages(mailbox_id, cols, uid_ranges(uids))
    return {
        r[0]: MessageExtras(r[1], None if r[2] is None else date_of(r[2]), r[3], r[4]) for r in rows
    }


def set_previews(mailbox_id: int, previews: dict[int, str]) -> Script[Done[None]]:
    return (yield from _set_each("preview", mailbox_id, previews))


def _set_each(column: str, mailbox_id: int, values: Mapping[int, object]) -> Script[Done[None]]:
    """Sets ``column`` (a name from this module, never input) of each message by UID."""
    for uid, value in sorted(values.items()):
        yield Query(
            f"UPDATE messages SET {column} = ? WHERE mailbox_id = ? AND uid = ?",  # noqa: S608
            (value, mailbox_id, uid),
            False,
        )
    return Done(None)


def blob_of(mailbox_id: int, uid: int) -> Script[tuple[str, bytes | None]]:
    """The message's blob id, and its body when the body is kept in the database."""
    rows = yield Query(
        "SELECT m.blob_id, b.data FROM messages m JOIN blobs b ON b.id = m.blob_id"
        " WHERE m.mailbox_id = ? AND m.uid = ?",
        (mailbox_id, uid),
    )
    if not rows:
        raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
    data = rows[0][1]
    return str(rows[0][0]), None if data is None else bytes(data)


def blobs_of(mailbox_id: int, uids: Sequence[int]) -> Script[dict[int, tuple[str, bytes | None]]]:
    """``blob_of`` for many messages, in one snapshot; expunged ones are left out."""
    found: dict[int, tuple[str, bytes | None]] = {}
    for clause, params in range_filters(uid_ranges(uids)):
        rows = yield Query(
            "SELECT m.uid, m.blob_id, b.data FROM messages m"  # noqa: S608 - placeholders only
            f" JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND {clause}",
            (mailbox_id, *params),
        )
        for uid, blob_id, data in rows:
            found[uid] = (str(blob_id), None if data is None else bytes(data))
    return found


def inline_body(blob_id: str) -> Script[bytes | None]:
    """The body of ``blob_id`` when it is kept in the database, else None."""
    rows = yield Query("SELECT data FROM blobs WHERE id = ?", (blob_id,))
    return None if not rows or rows[0][0] is None else bytes(rows[0][0])


def live_blobs(blob_ids: Sequence[str]) -> Script[set[str]]:
    """Which of these body files are referenced (again) now: a row that holds the bytes itself
    needs no file."""
    live: set[str] = set()
    for i in range(0, len(blob_ids), ROWS_PER_INSERT):
        chunk = blob_ids[i : i + ROWS_PER_INSERT]
        marks = ", ".join("?" * len(chunk))
        rows = yield Query(
            f"SELECT id FROM blobs WHERE id IN ({marks}) AND data IS NULL",  # noqa: S608
            tuple(chunk),
        )
        live.update(r[0] for r in rows)
    return live


def _new_flags(op: FlagOp, old: frozenset[str], flags: frozenset[str]) -> frozenset[str]:
    if op is FlagOp.ADD:
        return old | flags
    if op is FlagOp.REMOVE:
        return old - flags
    return flags


def store_flags(
    mailbox_id: int,
    uids: Sequence[int],
    op: FlagOp,
    flags: frozenset[str],
    unchanged_since: int | None,
) -> Script[Done[FlagsResult]]:
    flags = normalise_flags(flags)
    user_id, _, _ = yield from lock_mailbox(mailbox_id)
    rows = yield from select_messages(mailbox_id, MESSAGE_COLS, uid_ranges(uids))
    todo: list[tuple[MessageInfo, frozenset[str]]] = []
    modified: list[int] = []
    for row in rows:
        info = message_info(row)
        # RFC 7162 §3.1.3: a message changed since UNCHANGEDSINCE is left alone and reported
        if unchanged_since is not None and info.modseq > unchanged_since:
            modified.append(info.uid)
            continue
        new = _new_flags(op, info.flags, flags)
        if new != info.flags:  # a no-op keeps its MODSEQ and is not reported
            todo.append((info, new))
    if not todo:
        return Done(FlagsResult([], modified))
    _, _, _, modseq = yield from allocate(mailbox_id, 0)
    # One UPDATE per distinct outcome and run of UIDs: "1:* +FLAGS (\Seen)" is a few statements.
    by_outcome: dict[frozenset[str], list[int]] = {}
    for info, new in todo:
        by_outcome.setdefault(new, []).append(info.uid)
    for new, uids_with in by_outcome.items():
        bits, keywords = encode_flags(new)
        for clause, params in range_filters(uid_ranges(uids_with)):
            yield Query(
                "UPDATE messages SET sysflags = ?, keywords = ?, modseq = ?"  # noqa: S608
                f" WHERE mailbox_id = ? AND {clause}",
                (bits, keywords, modseq, mailbox_id, *params),
                False,
            )
    changed = [MessageInfo(i.uid, modseq, new, i.internal_date, i.size) for i, new in todo]
    uids_changed = tuple(i.uid for i in changed)
    change = Change(user_id, mailbox_id, ChangeKind.FLAGS_CHANGED, modseq, uids_changed)
    return Done(FlagsResult(changed, modified), (change,))


def expunge(mailbox_id: int, uids: Sequence[int]) -> Script[Done[list[Expunged]]]:
    user_id, _, _ = yield from lock_mailbox(mailbox_id)
    removed = yield from delete_messages(mailbox_id, uid_ranges(uids))
    return (yield from _expunged(mailbox_id, user_id, removed))


def count_deleted(mailbox_id: int, ranges: Sequence[tuple[int, int]] | None) -> Script[int]:
    """How many messages (in ``ranges``; None: all) are flagged \\Deleted now: whether
    ``expunge_deleted`` will be a light write (another session may flag more meanwhile; that
    only makes the write longer, never wrong)."""
    total = 0
    for clause, params in [("1 = 1", ())] if ranges is None else range_filters(ranges):
        rows = yield Query(
            f"SELECT count(*) FROM messages WHERE mailbox_id = ? AND {clause}"  # noqa: S608
            " AND (sysflags & ?) <> 0",
            (mailbox_id, *params, DELETED),
        )
        total += int(rows[0][0])
    return total


def expunge_deleted(
    mailbox_id: int, ranges: Sequence[tuple[int, int]] | None
) -> Script[Done[list[Expunged]]]:
    """EXPUNGE/CLOSE: the messages flagged \\Deleted now, decided under the mailbox lock.

    Deciding inside the transaction means a \\Deleted cleared by another session a moment ago
    is honoured, and no listing of the whole mailbox crosses into Python to find the few.
    """
    user_id, _, _ = yield from lock_mailbox(mailbox_id)
    removed = yield from delete_messages(mailbox_id, ranges, only_flag=DELETED)
    return (yield from _expunged(mailbox_id, user_id, removed))


def _expunged(mailbox_id: int, user_id: int, removed: Rows) -> Script[Done[list[Expunged]]]:
    if not removed:
        return Done([])
    modseq, change = yield from log_expunges(mailbox_id, user_id, removed)
    usage: dict[int, tuple[int, int]] = {}
    blobs: Counter[str] = Counter()
    forget_messages(user_id, removed, usage, blobs)
    freed = yield from adjust_blobs(dict(blobs), {})
    yield from charge(usage)
    return Done([Expunged(r[0], modseq) for r in removed], (change,), freed)


_COPY_COLS = (
    "uid, sysflags, keywords, internal_date, size, blob_id, meta, sort_keys, savedate, preview"
)


def copy_messages(
    src: int,
    ranges: Sequence[tuple[int, int]],
    dst: int,
    *,
    move: bool,
    now: str | None = None,
    seen_user: int | None = None,
    rights: str = "stw",
) -> Script[Done[Copied]]:
    """COPY, or MOVE (RFC 6851 §3.3: copy, then expunge the sources, in one transaction).

    With ``seen_user`` the copies' flags are that user's (``seen.CopyFlags``): their own \\Seen
    on a mailbox another user owns, read and written in this transaction, and only the flags
    ``rights`` allow."""
    locked = {}
    for mailbox_id in sorted({src, dst}):  # lock order: mailboxes by id
        locked[mailbox_id] = yield from lock_mailbox(mailbox_id)
    rows = yield from select_messages(src, _COPY_COLS, ranges)
    if not rows:
        return Done(Copied(locked[dst][1], []))
    texts = yield from _search_rows(src, ranges)
    adjust = None
    if seen_user is not None:
        owners = locked[src][0], locked[dst][0]
        adjust = yield from seen.copy_flags(owners[0], src, owners[1], seen_user, rights)
    seen_uids: list[int] = []
    dst_user, dst_uidvalidity, first, modseq = yield from allocate(dst, len(rows))
    usage: dict[int, tuple[int, int]] = {}
    blobs: Counter[str] = Counter()
    new_rows = []
    pairs = []
    search_rows = []
    for uid, row in enumerate(rows, first):  # ascending source UID order, RFC 4315 §3
        bits, keywords = row[1], row[2]
        if adjust is not None:
            bits, keywords, private = adjust.of(row[0], bits, keywords)
            if private:
                seen_uids.append(uid)
        # SAVEDATE (RFC 8514): now for COPY and MOVE; kept when INBOX is renamed (now None)
        new_rows.append((dst, uid, modseq, bits, keywords, *row[3:8], now or row[8], row[9]))
        pairs.append((row[0], uid))
        if row[0] in texts:  # else made on the copy's first search, as for the source
            search_rows.append((dst, uid, *texts[row[0]]))
        blobs[row[5]] += 1
        add_usage(usage, dst_user, row[4], 1)
    changes = [Change(dst_user, dst, ChangeKind.MESSAGES_ADDED, modseq, tuple(p[1] for p in pairs))]
    if move:
        removed = yield from delete_messages(src, uid_ranges(r[0] for r in rows))
        _, change = yield from log_expunges(src, locked[src][0], removed)
        changes.append(change)
        forget_messages(locked[src][0], removed, usage, blobs)
    freed = yield from adjust_blobs(dict(blobs), {r[5]: r[4] for r in rows})
    yield from insert_rows("messages", (*_INSERT_COLS, "preview"), new_rows)
    yield from insert_rows("message_search", ("mailbox_id", "uid", *_SEARCH_COLS), search_rows)
    if seen_user is not None:
        yield from seen.new_seen_rows(dst, seen_user, seen_uids)
    yield from charge(usage)
    return Done(Copied(dst_uidvalidity, pairs), tuple(changes), freed)


def _search_rows(mailbox_id: int, ranges: Sequence[tuple[int, int]]) -> Script[dict[int, Row]]:
    """The search rows of these messages, by UID (read before a move deletes them)."""
    out: dict[int, Row] = {}
    for clause, params in range_filters(ranges):
        rows = yield Query(
            f"SELECT uid, {', '.join(_SEARCH_COLS)} FROM message_search"  # noqa: S608
            f" WHERE mailbox_id = ? AND {clause}",
            (mailbox_id, *params),
        )
        out.update((r[0], tuple(r[1:])) for r in rows)
    return out


def changes_since(mailbox_id: int, modseq: int) -> Script[list[MessageInfo]]:
    rows = yield Query(
        f"SELECT {MESSAGE_COLS} FROM messages"  # noqa: S608
        " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        (mailbox_id, modseq),
    )
    return [message_info(r) for r in rows]


def expunged_since(mailbox_id: int, modseq: int) -> Script[list[Expunged]]:
    rows = yield Query(
        "SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        (mailbox_id, modseq),
    )
    return [Expunged(r[0], r[1]) for r in rows]
