"""SORT and THREAD (RFC 5256, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT): order the SEARCH result.

Theory of operation
-------------------
The search program runs as for SEARCH (``imap_messages.search_matches``); then the keys the
criteria compare are read for the whole mailbox in one query (``Store.sort_keys``: the short
text ``courriel.mail.sortkeys`` made from the parse at delivery, so no message and no parse
is read) unless the criteria use only the row (ARRIVAL, SIZE). Sorting is one stable
``list.sort`` per criterion, the last first: ties keep the earlier order, and the starting
order is the mailbox's, so messages equal on every key stay in mailbox order (RFC 5256 §3).
REVERSE reverses one key only; Python's sort stays stable under ``reverse=True``.

The comparisons are ``i;ascii-casemap`` (RFC 5256 §2.1, §3), the keys being stored with ASCII
letters upper-cased; DISPLAYFROM and DISPLAYTO compare case-folded names (RFC 5957 §3 asks
for ``i;unicode-casemap`` where it is offered). A missing sent date is the internal date
(RFC 5256 §2.2).

Sorting and threading a large result is CPU work that cannot be cut into steps, so above
``OFFLOAD_MESSAGES`` it runs in a worker thread and the event loop keeps serving the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from courriel.mail import sortkeys
from courriel.session import imap_context, imap_search, imap_thread
from courriel.session.imap_messages import search_matches, uses_modseq
from courriel.session.imap_selected import SelectedView
from courriel.session.imap_state import SessionState
from courriel.session.timeslice import offload
from courriel.store.base import MessageInfo
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.search import SearchAll
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm, ThreadForest

OFFLOAD_MESSAGES = 2000  # a result this large is sorted or threaded in a worker thread
_ROW_KEYS = frozenset({SortKey.ARRIVAL, SortKey.SIZE})

# One message while it is sorted: (number to answer, row, ``sortkeys.fields`` of its keys)
Entry = tuple[int, MessageInfo, Sequence[str]]


def _sent(entry: Entry) -> int:
    sent = entry[2][sortkeys.SENT]
    return int(sent) if sent else int(entry[1].internal_date.timestamp())  # RFC 5256 §2.2


def _field(position: int) -> Callable[[Entry], str]:
    return lambda e: e[2][position]


_KEY_OF: dict[SortKey, Callable[[Entry], Any]] = {
    SortKey.ARRIVAL: lambda e: e[1].internal_date,
    SortKey.SIZE: lambda e: e[1].size,
    SortKey.DATE: _sent,
    SortKey.SUBJECT: _field(sortkeys.SUBJECT),
    SortKey.FROM: _field(sortkeys.FROM),
    SortKey.TO: _field(sortkeys.TO),
    SortKey.CC: _field(sortkeys.CC),
    SortKey.DISPLAYFROM: _field(sortkeys.DISPLAY_FROM),
    SortKey.DISPLAYTO: _field(sortkeys.DISPLAY_TO),
}


def sort_entries(entries: list[Entry], criteria: Sequence[SortCriterion]) -> list[int]:
    """The numbers of ``entries`` (in mailbox order) sorted by ``criteria`` (RFC 5256 §3)."""
    for criterion in reversed(criteria):
        entries.sort(key=_KEY_OF[criterion.key], reverse=criterion.reverse)
    return [e[0] for e in entries]


def thread_entries(entries: list[Entry], algorithm: ThreadAlgorithm) -> ThreadForest:
    keys = [e[2] for e in entries]
    messages = imap_thread.Threadable(
        numbers=[e[0] for e in entries],
        sent=[_sent(e) for e in entries],
        subjects=[k[sortkeys.SUBJECT] for k in keys],
        replies=[k[sortkeys.REPLY] == "1" for k in keys],
        message_ids=[k[sortkeys.MESSAGE_ID] for k in keys],
        references=[k[sortkeys.REFERENCES] for k in keys],
    )
    if algorithm is ThreadAlgorithm.ORDEREDSUBJECT:
        return imap_thread.ordered_subject(messages)
    return imap_thread.references(messages)


async def _matched(state: SessionState, view: SelectedView, tree: Any) -> list[tuple[int, int]]:
    if isinstance(tree, SearchAll):
        return list(enumerate(view.uids, 1))  # the usual "ALL": no evaluation per message
    return await search_matches(state, view, imap_search.plan_search(tree), tree)


async def _keys(
    state: SessionState, view: SelectedView, matched: list[tuple[int, int]]
) -> dict[int, str]:
    """The stored keys, read from the store once per mailbox and kept with the mailbox's
    search cache: a later SORT reads only the messages new since."""
    cached = view.fields.sort_keys
    missing = [u for _, u in matched if u not in cached]
    if missing:
        cached.update(await state.store.sort_keys(view.mailbox.id, min(missing)))
    return cached


def _entries(
    matched: list[tuple[int, int]], infos: dict[int, MessageInfo], keys: dict[int, str], uid: bool
) -> list[Entry]:
    fields = sortkeys.fields
    get = keys.get
    return [(u if uid else seq, infos[u], fields(get(u))) for seq, u in matched]


async def sort(state: SessionState, cmd: c.Sort) -> bytes:
    view = state.selected()
    matched = await _matched(state, view, cmd.search)
    first = False
    modseq = None
    if uses_modseq(cmd.search):
        first = state.enable_condstore()  # RFC 7162 §3.1: a MODSEQ search key enables it
        modseq = max((view.infos[u].modseq for _, u in matched), default=0) or None
    needs_keys = any(k.key not in _ROW_KEYS for k in cmd.criteria)
    keys = await _keys(state, view, matched) if needs_keys else {}
    infos = view.infos

    def answer() -> tuple[bytes, list[int]]:
        numbers = sort_entries(_entries(matched, infos, keys, cmd.uid), cmd.criteria)
        if cmd.returns is None:
            return r.sort(numbers, modseq if numbers else None), numbers
        return _esort(cmd, numbers, modseq), numbers

    reply, numbers = await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)
    uids = numbers if cmd.uid else [view.uid_of(n) for n in numbers]
    out = [imap_context.register(view, cmd, cmd.search, cmd.criteria, uids), reply]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID SORT" if cmd.uid else "SORT") + " completed"
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)


def _esort(cmd: c.Sort, numbers: list[int], modseq: int | None) -> bytes:
    """RFC 5267 §3.2: MIN and MAX are the first and last in sort order, ALL keeps the order."""
    opts = frozenset(cmd.returns or ())
    found = bool(numbers)
    window = cmd.partial
    return r.esearch(
        cmd.tag,
        uid=cmd.uid,
        minimum=numbers[0] if found and "MIN" in opts else None,
        maximum=numbers[-1] if found and "MAX" in opts else None,
        all_numbers=numbers if found and "ALL" in opts else None,
        count=len(numbers) if "COUNT" in opts else None,
        modseq=modseq if found else None,
        in_order=True,
        partial=None if window is None else (window, imap_search.partial_slice(numbers, window)),
    )


async def thread(state: SessionState, cmd: c.Thread) -> bytes:
    view = state.selected()
    matched = await _matched(state, view, cmd.search)
    first = False
    if uses_modseq(cmd.search):
        first = state.enable_condstore()  # RFC 7162 §3.1
    keys = await _keys(state, view, matched)
    infos = view.infos

    def answer() -> bytes:
        entries = _entries(matched, infos, keys, cmd.uid)
        return r.thread(thread_entries(entries, cmd.algorithm))

    out = [await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID THREAD" if cmd.uid else "THREAD") + " completed"
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)


async def _result(state: SessionState, ctx: imap_context.SearchContext) -> list[int]:
    """The context's program run again over the view, as UIDs in its order."""
    view = state.selected()
    matched = await _matched(state, view, ctx.criteria)
    if ctx.order is None:
        return [u for _, u in matched]
    order = ctx.order
    needs_keys = any(k.key not in _ROW_KEYS for k in order)
    keys = await _keys(state, view, matched) if needs_keys else {}
    infos = view.infos

    def answer() -> list[int]:
        return sort_entries(_entries(matched, infos, keys, True), order)

    return await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)


async def context_updates(state: SessionState) -> bytes:
    """ADDTO and REMOVEFROM for the search contexts whose view changed (RFC 5267 §4.3)."""
    view = state.view
    if view is None or not view.contexts:
        return b""
    out: list[bytes] = []
    for ctx in list(view.contexts.values()):
        if ctx.version != view.version:
            out.append(imap_context.changes(view, ctx, await _result(state, ctx)))
    return b"".join(out)
