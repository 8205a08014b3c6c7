"""SORT and THREAD (RFC 5256, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT): order the SEARCH result.

Theory of operation
-------------------
The search program runs as for SEARCH (``imap_messages.search_matches``); then the keys the
criteria compare are read for the whole mailbox in one query (``Store.sort_keys``: the short
text ``courriel.mail.sortkeys`` made from the parse, once: then no message and no parse is
read) unless the criteria use only the row (ARRIVAL, SIZE). Sorting is one stable
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

from collections.abc import Sequence
from typing import Any

from courriel.mail import sortkeys
from courriel.session.imap import context as imap_context
from courriel.session.imap import search as imap_search
from courriel.session.imap import thread as imap_thread
from courriel.session.imap.messages import search_matches, uses_modseq
from courriel.session.imap.selected import SelectedView
from courriel.session.imap.state import Selected, SessionState
from courriel.store.base import MessageInfo
from courriel.timeslice import offload
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.search import SearchAll
from courriel.wire.imap.sort import SortCriterion, SortKey, ThreadAlgorithm, ThreadForest

OFFLOAD_MESSAGES = 2000  # a result this large is sorted or threaded in a worker thread
_ROW_KEYS = frozenset({SortKey.ARRIVAL, SortKey.SIZE})


class Columns:
    """The matched messages as columns, one list per key, in mailbox order.

    Columns of strings and integers, not a tuple or a list per message: sorting 100,000
    messages then makes no 100,000 containers for the garbage collector to walk, which
    otherwise costs more than the sort itself.
    """

    def __init__(
        self,
        matched: list[tuple[int, int]],
        infos: dict[int, MessageInfo],
        keys: dict[int, str],
        uid: bool,
    ) -> None:
        self.uids = [u for _, u in matched]
        self.numbers = self.uids if uid else [n for n, _ in matched]
        self._infos = infos
        self._keys = keys

    def field(self, position: int) -> list[str]:
        get, cut = self._keys.get, sortkeys.field
        return [cut(get(u), position) for u in self.uids]

    def fields(self, *positions: int) -> list[list[str]]:
        """Several keys, each message's text split once."""
        out: list[list[str]] = [[] for _ in positions]
        get, split = self._keys.get, sortkeys.fields
        for u in self.uids:
            parts = split(get(u))
            for column, position in zip(out, positions, strict=True):
                column.append(parts[position])
        return out

    def sent(self, texts: list[str] | None = None) -> list[int]:
        """RFC 5256 §2.2: the Date, or the internal date when there is none."""
        infos = self._infos
        dates = self.field(sortkeys.SENT) if texts is None else texts
        return [
            int(s) if s else int(infos[u].internal_date.timestamp())
            for u, s in zip(self.uids, dates, strict=True)
        ]

    def column(self, key: SortKey) -> list[Any]:
        if key is SortKey.ARRIVAL:
            return [self._infos[u].internal_date for u in self.uids]
        if key is SortKey.SIZE:
            return [self._infos[u].size for u in self.uids]
        if key is SortKey.DATE:
            return self.sent()
        return self.field(_POSITIONS[key])


_POSITIONS = {
    SortKey.SUBJECT: sortkeys.SUBJECT,
    SortKey.FROM: sortkeys.FROM,
    SortKey.TO: sortkeys.TO,
    SortKey.CC: sortkeys.CC,
    SortKey.DISPLAYFROM: sortkeys.DISPLAY_FROM,
    SortKey.DISPLAYTO: sortkeys.DISPLAY_TO,
}


def sort_numbers(msgs: Columns, criteria: Sequence[SortCriterion]) -> list[int]:
    """The numbers of ``msgs`` sorted by ``criteria`` (RFC 5256 §3)."""
    order = list(range(len(msgs.uids)))
    for criterion in reversed(criteria):
        column = msgs.column(criterion.key)
        order.sort(key=column.__getitem__, reverse=criterion.reverse)
    numbers = msgs.numbers
    return [numbers[i] for i in order]


def thread_numbers(msgs: Columns, algorithm: ThreadAlgorithm) -> ThreadForest:
    k = sortkeys
    sent, subjects, replies, ids, refs = msgs.fields(
        k.SENT, k.SUBJECT, k.REPLY, k.MESSAGE_ID, k.REFERENCES
    )
    messages = imap_thread.Threadable(
        numbers=msgs.numbers,
        sent=msgs.sent(sent),
        subjects=subjects,
        replies=[r == "1" for r in replies],
        message_ids=ids,
        references=refs,
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


async def sort(state: Selected, cmd: c.Sort) -> bytes:
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
        numbers = sort_numbers(Columns(matched, infos, keys, cmd.uid), cmd.criteria)
        if cmd.returns is None:
            return r.sort(numbers, modseq if numbers else None), numbers
        return _esort(cmd, numbers, modseq), numbers

    reply, numbers = await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)
    uids = numbers if cmd.uid else [view.uid_of(n) for n in numbers]
    out = [imap_context.register(view, cmd, cmd.search, cmd.criteria, uids), reply]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID SORT" if cmd.uid else "SORT") + " completed"
    out.append(state.condstore_announce(first))
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


async def thread(state: Selected, cmd: c.Thread) -> bytes:
    view = state.selected()
    matched = await _matched(state, view, cmd.search)
    first = False
    if uses_modseq(cmd.search):
        first = state.enable_condstore()  # RFC 7162 §3.1
    keys = await _keys(state, view, matched)
    infos = view.infos

    def answer() -> bytes:
        return r.thread(thread_numbers(Columns(matched, infos, keys, cmd.uid), cmd.algorithm))

    out = [await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID THREAD" if cmd.uid else "THREAD") + " completed"
    out.append(state.condstore_announce(first))
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)


async def _result(state: Selected, ctx: imap_context.SearchContext) -> list[int]:
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
        return sort_numbers(Columns(matched, infos, keys, True), order)

    return await offload(answer, heavy=len(matched) >= OFFLOAD_MESSAGES)


async def context_updates(state: SessionState) -> bytes:
    """ADDTO and REMOVEFROM for the search contexts whose view changed (RFC 5267 §4.3)."""
    if not isinstance(state, Selected) or not state.view.contexts:
        return b""
    view = state.view
    out: list[bytes] = []
    for ctx in list(view.contexts.values()):
        if ctx.version != view.version:
            out.append(imap_context.changes(view, ctx, await _result(state, ctx)))
    return b"".join(out)
