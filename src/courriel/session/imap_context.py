"""RFC 5267 §4 search contexts: SEARCH or SORT ``RETURN (UPDATE)`` results kept up to date.

Theory of operation
-------------------
A SEARCH or SORT with the UPDATE return option leaves a ``SearchContext`` on the selected
view, keyed by the command's tag: the program, the sort criteria (None for SEARCH), the
return options and the result as UIDs (ascending for SEARCH, in sort order for SORT). The
contexts die with the view (SELECT, CLOSE, UNSELECT) or by CANCELUPDATE.

After each command, and during IDLE, the session asks ``imap_sort.context_updates`` whether
the view changed since a context was last evaluated (``SelectedView.version``); if it did,
the program runs again over the view and ``changes`` turns the difference into ESEARCH
ADDTO and REMOVEFROM responses (RFC 5267 §4.3). Evaluating on the view keeps the updates in
step with what the client was told: a message expunged elsewhere but not yet announced still
counts, and a REMOVEFROM never names a sequence number the client does not know. Numbers are
UIDs for UID commands, sequence numbers otherwise; positions are 0 for SEARCH (the result has
no order beyond the mailbox's) and 1-based in the sorted result for SORT. An expunged message
leaves a sequence-number context through its EXPUNGE response, which names it; a UID context
also gets a REMOVEFROM.

UPDATE does not interact with the other return options (RFC 5267 §4.3, §4.4; RFC 9394 §3.1):
the updates always speak of the whole set of matching messages. So RETURN (UPDATE COUNT) or
(UPDATE MIN) gets ADDTO and REMOVEFROM, not new counts, and a PARTIAL window is kept like
any other result: the context holds every matching message, and the updates name them all,
also those outside the window, with their positions in the whole result (§4.3 warns the
client that it may so hear of messages it does not care about). The window itself is
answered once, by the command.

Each context costs one evaluation per change, so a session holds at most ``MAX_CONTEXTS``;
past that the result comes without updates and an untagged ``NO [NOUPDATE "tag"]`` says so
(RFC 5267 §4.3.1); that is the only case of NOUPDATE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from courriel.session.imap_selected import SelectedView
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.search import SearchKey
from courriel.wire.imap.sort import SortCriterion
from courriel.wire.imap.strings import string

MAX_CONTEXTS = 5


@dataclass(slots=True)
class SearchContext:
    tag: str
    uid: bool
    criteria: SearchKey
    order: tuple[SortCriterion, ...] | None  # None: SEARCH
    opts: frozenset[str]
    result: list[int]  # UIDs: ascending for SEARCH, in sort order for SORT
    version: int  # the view's version the result was made at


def register(
    view: SelectedView,
    cmd: c.Search | c.Sort,
    criteria: SearchKey,
    order: tuple[SortCriterion, ...] | None,
    result: list[int],
) -> bytes:
    """Keeps the context a command asked for; ``* NO [NOUPDATE]`` when it is refused.

    ``result`` is the whole result, also under PARTIAL, whose window the updates ignore
    (RFC 5267 §4.4, RFC 9394 §3.1)."""
    opts = frozenset(cmd.returns or ())
    if "UPDATE" not in opts:
        return b""
    view.contexts.pop(cmd.tag, None)  # a tag used again names the new context
    if len(view.contexts) >= MAX_CONTEXTS:
        # RFC 5267 §4.3.1: refused, the other return options still answered
        return r.untagged(
            "NO", "Too many search contexts: not updated", b"NOUPDATE " + string(cmd.tag)
        )
    view.contexts[cmd.tag] = SearchContext(
        cmd.tag, cmd.uid, criteria, order, opts, list(result), view.version
    )
    return b""


def cancel(view: SelectedView, cmd: c.CancelUpdate) -> bytes:
    unknown = [t for t in cmd.tags if t not in view.contexts]
    if unknown:
        return r.bad(cmd.tag, f"No search context has the tag {unknown[0]}")
    for tag in cmd.tags:
        del view.contexts[tag]
    return r.ok(cmd.tag, "CANCELUPDATE completed")


def _numbers(view: SelectedView, ctx: SearchContext, uids: Sequence[int]) -> list[int]:
    if ctx.uid:
        return list(uids)
    return [n for u in uids if (n := view.seq_of(u)) is not None]


def changes(view: SelectedView, ctx: SearchContext, new: list[int]) -> bytes:
    """The responses that take the client from ``ctx.result`` to ``new``; then keeps ``new``."""
    old = ctx.result
    ctx.result = new
    ctx.version = view.version
    if old == new:
        return b""
    # RFC 5267 §4.3: whatever else was asked (MIN, COUNT, PARTIAL), the set's changes
    out: list[bytes] = []
    kept, had = set(new), set(old)
    # A message still in the view left the result; an expunged one only for UID contexts.
    removed = [u for u in old if u not in kept and (ctx.uid or u in view.infos)]
    update = _update_maker(view, ctx)
    if ctx.order is None:
        if removed:
            out.append(update("REMOVEFROM", 0, sorted(removed)))
        added = [u for u in new if u not in had]
        if added:
            out.append(update("ADDTO", 0, added))
        return b"".join(out)
    # SORT: removals from the last position back, so earlier positions do not move; then
    # additions by their final position, each run of neighbours in one response.
    positions = {u: i for i, u in enumerate(old, 1)}
    for uid in sorted(removed, key=positions.__getitem__, reverse=True):
        out.append(update("REMOVEFROM", positions[uid], [uid]))
    run: list[int] = []
    start = 0
    for position, uid in enumerate(new, 1):
        if uid in had:
            continue
        if run and position != start + len(run):
            out.append(update("ADDTO", start, run))
            run = []
        if not run:
            start = position
        run.append(uid)
    if run:
        out.append(update("ADDTO", start, run))
    return b"".join(out)


def before_expunge(view: SelectedView, gone: Sequence[int]) -> bytes:
    """REMOVEFROM for the session's own expunges, sent before its EXPUNGE responses, with the
    message numbers the client still knows (as Dovecot does, and imaptest expects); the
    contexts then forget those messages, so no later update repeats them."""
    gone_set = set(gone)
    out: list[bytes] = []
    for ctx in view.contexts.values():
        if ctx.version != view.version:
            continue  # a stale context is redone by ``changes``
        removed = [u for u in ctx.result if u in gone_set]
        if not removed:
            continue
        update = _update_maker(view, ctx)
        if ctx.order is None:
            out.append(update("REMOVEFROM", 0, sorted(removed)))
        else:
            positions = {u: i for i, u in enumerate(ctx.result, 1)}
            for uid in sorted(removed, key=positions.__getitem__, reverse=True):
                out.append(update("REMOVEFROM", positions[uid], [uid]))
        ctx.result = [u for u in ctx.result if u not in gone_set]
    return b"".join(out)


def _update_maker(view: SelectedView, ctx: SearchContext) -> Callable[[str, int, list[int]], bytes]:
    def update(kind: str, position: int, uids: list[int]) -> bytes:
        numbers = _numbers(view, ctx, uids) if kind == "ADDTO" or not ctx.uid else uids
        in_order = ctx.order is not None
        return r.esearch_update(
            ctx.tag, uid=ctx.uid, kind=kind, position=position, numbers=numbers, in_order=in_order
        )

    return update
