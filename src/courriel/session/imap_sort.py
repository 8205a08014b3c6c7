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

import functools
from collections.abc import Callable, Sequence
from typing import Any

from courriel.mail import sortkeys
from courriel.mail.sortkeys import SortKeys
from courriel.session import imap_search, imap_thread
from courriel.session.imap_messages import search_matches, uses_modseq
from courriel.session.imap_selected import SelectedView
from courriel.session.imap_state import SessionState
from courriel.session.timeslice import offload
from courriel.store.base import MessageInfo
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.search import SearchAll
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm, ThreadNode

OFFLOAD_MESSAGES = 2000  # a result this large is sorted or threaded in a worker thread
_ROW_KEYS = frozenset({SortKey.ARRIVAL, SortKey.SIZE})
_NO_KEYS = SortKeys("", False, "", "", "", "", "", None, "", ())

# One message while it is sorted: (number to answer, row, stored keys)
Entry = tuple[int, MessageInfo, SortKeys]


def _sent(entry: Entry) -> int:
    sent = entry[2].sent
    return int(entry[1].internal_date.timestamp()) if sent is None else sent


_KEY_OF: dict[SortKey, Callable[[Entry], Any]] = {
    SortKey.ARRIVAL: lambda e: e[1].internal_date,
    SortKey.SIZE: lambda e: e[1].size,
    SortKey.DATE: _sent,
    SortKey.SUBJECT: lambda e: e[2].subject,
    SortKey.FROM: lambda e: e[2].sort_from,
    SortKey.TO: lambda e: e[2].sort_to,
    SortKey.CC: lambda e: e[2].sort_cc,
    SortKey.DISPLAYFROM: lambda e: e[2].display_from,
    SortKey.DISPLAYTO: lambda e: e[2].display_to,
}


def sort_entries(entries: list[Entry], criteria: Sequence[SortCriterion]) -> list[int]:
    """The numbers of ``entries`` (in mailbox order) sorted by ``criteria`` (RFC 5256 §3)."""
    for criterion in reversed(criteria):
        entries.sort(key=_KEY_OF[criterion.key], reverse=criterion.reverse)
    return [e[0] for e in entries]


def thread_entries(entries: list[Entry], algorithm: ThreadAlgorithm) -> list[ThreadNode]:
    messages = [imap_thread.Threadable(e[0], e[2], _sent(e)) for e in entries]
    if algorithm is ThreadAlgorithm.ORDEREDSUBJECT:
        return imap_thread.ordered_subject(messages)
    return imap_thread.references(messages)


async def _matched(state: SessionState, view: SelectedView, tree: Any) -> list[tuple[int, int]]:
    if isinstance(tree, SearchAll):
        return list(enumerate(view.uids, 1))  # the usual "ALL": no evaluation per message
    return await search_matches(state, view, imap_search.plan_search(tree), tree)


async def _entries(
    state: SessionState, view: SelectedView, matched: list[tuple[int, int]], uid: bool, keys: bool
) -> list[Entry]:
    stored = await state.store.sort_keys(view.mailbox.id) if keys else {}
    infos = view.infos
    out: list[Entry] = []
    for seq, u in matched:
        text = stored.get(u)
        decoded = None if text is None else sortkeys.decode(text)
        out.append((u if uid else seq, infos[u], decoded or _NO_KEYS))
    return out


async def sort(state: SessionState, cmd: c.Sort) -> bytes:
    view = state.selected()
    matched = await _matched(state, view, cmd.search)
    first = False
    modseq = None
    if uses_modseq(cmd.search):
        first = state.enable_condstore()  # RFC 7162 §3.1: a MODSEQ search key enables it
        modseq = max((view.infos[u].modseq for _, u in matched), default=0) or None
    needs_keys = any(k.key not in _ROW_KEYS for k in cmd.criteria)
    entries = await _entries(state, view, matched, cmd.uid, needs_keys)
    numbers = await offload(
        functools.partial(sort_entries, entries, cmd.criteria),
        heavy=len(entries) >= OFFLOAD_MESSAGES,
    )
    if cmd.returns is None:
        out = [r.sort(numbers, modseq if numbers else None)]
    else:
        out = [_esort(cmd, numbers, modseq)]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID SORT" if cmd.uid else "SORT") + " completed"
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)


def _esort(cmd: c.Sort, numbers: list[int], modseq: int | None) -> bytes:
    """RFC 5267 §3.2: MIN and MAX are the first and last in sort order, ALL keeps the order."""
    opts = frozenset(cmd.returns or ())
    found = bool(numbers)
    return r.esearch(
        cmd.tag,
        uid=cmd.uid,
        minimum=numbers[0] if found and "MIN" in opts else None,
        maximum=numbers[-1] if found and "MAX" in opts else None,
        all_numbers=numbers if found and "ALL" in opts else None,
        count=len(numbers) if "COUNT" in opts else None,
        modseq=modseq if found else None,
        in_order=True,
    )


async def thread(state: SessionState, cmd: c.Thread) -> bytes:
    view = state.selected()
    matched = await _matched(state, view, cmd.search)
    first = False
    if uses_modseq(cmd.search):
        first = state.enable_condstore()  # RFC 7162 §3.1
    entries = await _entries(state, view, matched, cmd.uid, True)
    threads = await offload(
        functools.partial(thread_entries, entries, cmd.algorithm),
        heavy=len(entries) >= OFFLOAD_MESSAGES,
    )
    out = [r.thread(threads), await state.refresh(allow_expunge=cmd.uid)]
    text = ("UID THREAD" if cmd.uid else "THREAD") + " completed"
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)
