"""``courriel queue ...``: look at and steer the outbound queue, also while the server runs.

Theory of operation
-------------------
Each action is one operation of ``courriel.admin_queue`` (shared with the web admin and the
JSON API), run by the command's own process; this module only prints. An unknown id is
``NotFound``, which ``courriel.cli`` prints as one line with exit status 1.

* ``list``: every entry, oldest first, with its recipients still queued and their last error;
* ``show ID``: the envelope, every recipient's state, and the message header;
* ``retry ID`` / ``flush``: the queued recipients of one entry / of all are due now;
* ``hold ID`` / ``release ID``: no delivery until released; a release makes it due now;
* ``remove ID``: deleted, nobody told;
* ``bounce ID``: every queued recipient fails now and the sender gets the notice.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from courriel import admin_queue
from courriel.cli_access import audited
from courriel.config import Config
from courriel.store.base import Store
from courriel.store.queue import QueuedMessage, QueuedRecipient, RecipientState

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]
StoreCommand = Callable[[StoreOp], Callable[[argparse.Namespace], int]]

_HEADER_LINES = 40  # ``show`` prints at most this much of the message header


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _size(n: int) -> str:
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n}B"


def _recipient_line(r: QueuedRecipient) -> str:
    line = f"    {r.address}  {r.state.value}, {r.attempts} attempt{'' if r.attempts == 1 else 's'}"
    if r.state is RecipientState.QUEUED:
        line += f", next {_when(r.next_attempt)}"
    if r.reason:
        code = f"{r.code} " if r.code is not None else ""
        line += f": {code}{' '.join(r.reason.split())}"
    return line


def _summary(e: QueuedMessage) -> str:
    flags = " (held)" if e.held else ""
    sender = e.sender or "<>"
    return f"{e.id}  {_size(e.size)}  {_when(e.created)}  {sender}{flags}"


async def _list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    entries = await admin_queue.entries(store)
    if not entries:
        print("the queue is empty")
        return
    for e in entries:
        print(_summary(e))
        for r in e.recipients:
            if r.state is RecipientState.QUEUED or r.report is not None:
                print(_recipient_line(r))
    total = sum(len([r for r in e.recipients if r.state is RecipientState.QUEUED]) for e in entries)
    print(f"{len(entries)} message(s), {total} recipient(s) waiting")


async def _show(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    e = await store.queue.get(admin_queue.entry_id(args.id))
    fields = [
        ("id", e.id),
        ("sender", e.sender or "<>"),
        ("queued", _when(e.created)),
        ("size", _size(e.size)),
        ("held", "yes" if e.held else "no"),
        ("next attempt", _when(e.next_attempt)),
        ("submitted by", e.authenticated_as or "-"),
        ("RET / ENVID", f"{e.ret or '-'} / {e.envid or '-'}"),
        ("SMTPUTF8 / BODY", f"{'yes' if e.smtputf8 else 'no'} / {e.body_type or '-'}"),
    ]
    for name, value in fields:
        print(f"{name + ':':17}{value}")
    print("recipients:")
    for r in e.recipients:
        print(_recipient_line(r) + (f" [{r.remote_host}]" if r.remote_host else ""))
    end = e.message.find(b"\r\n\r\n")
    header = e.message if end < 0 else e.message[:end]
    lines = header.decode("utf-8", "replace").split("\r\n")
    print("header:")
    for line in lines[:_HEADER_LINES]:
        print("    " + line)
    if len(lines) > _HEADER_LINES:
        print(f"    ... {len(lines) - _HEADER_LINES} more lines")


async def _retry(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_queue.retry(store, args.id)
    print(f"{admin_queue.entry_id(args.id)} will be tried again now")


async def _flush(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    n = await admin_queue.retry(store, None)
    print(f"{n} message(s) will be tried again now")


async def _hold(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_queue.hold(store, args.id, True)
    print(f"{admin_queue.entry_id(args.id)} is held: it will not be delivered until released")


async def _release(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_queue.hold(store, args.id, False)
    print(f"{admin_queue.entry_id(args.id)} is released and will be tried now")


async def _remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_queue.remove(store, args.id)
    print(f"{admin_queue.entry_id(args.id)} removed from the queue; nobody was told")


async def _bounce(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_queue.bounce(store, args.id)
    print(f"{admin_queue.entry_id(args.id)} will be returned to its sender")


def add_commands(
    top: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, run: StoreCommand
) -> None:
    """Adds ``courriel queue ACTION`` to the command line; ``run`` opens the store around an op."""
    queue = top.add_parser("queue", help="mail waiting to go to other servers", parents=[common])
    sub = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_id: list[tuple[str, str, StoreOp]] = [
        ("show", "the envelope, each recipient's state and the header", _show),
        ("retry", "try the message's waiting recipients now", _retry),
        ("hold", "do not deliver the message until released", _hold),
        ("release", "deliver a held message again, now", _release),
        ("remove", "delete the message without telling anyone", _remove),
        ("bounce", "give up now and return the message to its sender", _bounce),
    ]
    p = sub.add_parser("list", help="the messages in the queue", parents=[common])
    p.set_defaults(handler=run(_list))
    for name, help_text, op in with_id:
        p = sub.add_parser(name, help=help_text, parents=[common])
        p.add_argument("id", metavar="ID", help="the queue id, as `courriel queue list` shows it")
        if name != "show":  # every change is written to the audit log
            op = audited(f"queue {name}", lambda args: admin_queue.entry_id(args.id), op)
        p.set_defaults(handler=run(op))
    p = sub.add_parser("flush", help="try every waiting message now", parents=[common])
    p.set_defaults(handler=run(audited("queue flush", lambda args: "all", _flush)))
