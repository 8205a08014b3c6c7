"""SORT and THREAD on a large mailbox: how long each takes, and the one-time key backfill.

Theory of operation
-------------------
A fresh SQLite store gets one INBOX of ``--messages`` generated messages (default 100,000),
parsed and appended as delivery would: a few thousand conversations, each a chain of replies
("Re: topic n", References to the previous one) from a few hundred senders, dates spread
over years. Then an in-process IMAP session selects the mailbox and runs each command
``RUNS`` times; the table shows the best and the median wall time of the whole command (store
read of the keys, decoding, sorting or threading, response); the first run reads the keys
from the store, the later ones find them in the mailbox's cache. A last row times the one-time
work for messages stored before the keys existed (migration 0017): the column is emptied and
the first SORT makes every key again from the stored parse.

Run: ``python -m bench.sort_bench [--messages N]``; prints a table. Not part of the suite:
the suite checks behaviour; this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from courriel.mail.message import parse
from courriel.session.imap import select as imap_select
from courriel.session.imap import sort as imap_sort
from courriel.session.imap.state import Authenticated, Selected
from courriel.store.base import NewMessage, Store
from courriel.store.sql.core import Done, Query, Script
from courriel.store.sqlite import SqliteStore, open_sqlite
from courriel.testing.fill import add_user
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command

RUNS = 5
BATCH = 1000
COMMANDS = (
    b"t SORT (SUBJECT) UTF-8 ALL",
    b"t SORT (REVERSE DATE) UTF-8 ALL",
    b"t SORT (FROM DATE) UTF-8 ALL",
    b"t SORT (DISPLAYFROM) UTF-8 ALL",
    b"t SORT (ARRIVAL) UTF-8 ALL",
    b"t UID SORT (SUBJECT) UTF-8 UNSEEN",
    b"t THREAD ORDEREDSUBJECT UTF-8 ALL",
    b"t THREAD REFERENCES UTF-8 ALL",
)
START = datetime(2020, 1, 1, tzinfo=UTC)


def message(n: int, rng: random.Random) -> NewMessage:
    topic = n // 25 if rng.random() < 0.8 else rng.randrange(4000)
    sender = rng.randrange(400)
    when = START + timedelta(minutes=n * 15 + rng.randrange(600))
    prefix = "Re: " if n % 25 else ""
    refs = f"References: <m{n - 1}@bench.example>\r\n" if n % 25 else ""
    raw = (
        f'From: "Sender {sender}" <s{sender}@bench.example>\r\n'
        f"To: user@bench.example\r\nSubject: {prefix}topic {topic}\r\n"
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <m{n}@bench.example>\r\n{refs}\r\n"
        f"Body of message {n}.\r\n"
    ).encode()
    flags = frozenset({"\\Seen"}) if n % 3 else frozenset()
    return NewMessage(raw, when, flags, parse(raw).to_bytes())


async def fill(store: Store, count: int) -> int:
    user = await add_user(store, "user@bench.example", "secret")
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    rng = random.Random(5256)
    for start in range(0, count, BATCH):
        batch = [message(n, rng) for n in range(start, min(count, start + BATCH))]
        await store.append([(inbox.id, m) for m in batch])
    return inbox.id


def forget_keys(mailbox_id: int) -> Script[Done[None]]:
    yield Query("UPDATE messages SET sort_keys = NULL WHERE mailbox_id = ?", (mailbox_id,), False)
    return Done(None)


async def run_command(state: Selected, text: bytes) -> float:
    cmd = parse_command([text], [], limits=Limits(), utf8=False)
    began = time.perf_counter()
    if isinstance(cmd, c.Sort):
        reply = await imap_sort.sort(state, cmd)
    else:
        assert isinstance(cmd, c.Thread)
        reply = await imap_sort.thread(state, cmd)
    took = time.perf_counter() - began
    assert reply.endswith(b"completed\r\n"), reply[-200:]
    return took


async def main_async(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="courriel-sort-bench-") as tmp:
        store = await open_sqlite(Path(tmp) / "courriel.db", Path(tmp) / "blobs")
        try:
            began = time.perf_counter()
            mailbox_id = await fill(store, count)
            print(f"filled {count} messages in {time.perf_counter() - began:.1f} s")
            user = await store.get_user("user@bench.example")
            assert user is not None
            authenticated = Authenticated(store, 10**7, user=user)
            select = parse_command([b"s SELECT INBOX"], [], limits=Limits(), utf8=False)
            assert isinstance(select, c.Select)
            await imap_select.select(authenticated, select)
            state = authenticated.moved_to
            assert isinstance(state, Selected)
            print(f"{'command':42} {'first':>8} {'best':>8} {'median':>8}")
            for text in COMMANDS:
                state.selected().fields.sort_keys.clear()
                cold = await run_command(state, text)
                times = [await run_command(state, text) for _ in range(RUNS)]
                best, median = min(times), statistics.median(times)
                line = f"{text.decode()[2:]:42} {cold * 1000:6.0f}ms"
                print(f"{line} {best * 1000:6.0f}ms {median * 1000:6.0f}ms")
            assert isinstance(store, SqliteStore)
            await store._write(forget_keys(mailbox_id))
            state.selected().fields.sort_keys.clear()  # as in a process started after it
            took = await run_command(state, COMMANDS[0])
            print(f"{'first SORT after migration 0017 (backfill)':42} {took * 1000:6.0f}ms")
            took = await run_command(state, COMMANDS[0])
            print(f"{'the SORT after it':42} {took * 1000:6.0f}ms")
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main_async(args.messages))


if __name__ == "__main__":
    main()
