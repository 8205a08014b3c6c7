"""One more process on a shared SQLite data directory, for test_store_processes.py.

``python processes_child.py <mode> <dir> <args...>``; every mode opens the store as a process of
its own would and prints one line per result, flushed, so the parent can follow it:

* ``append <dir> <mailbox id> <count> <tag>``: ``count`` appends from 4 concurrent writers,
  one message each (body ``body(tag, n)``); prints ``<n> <uid>`` per acknowledgement.
* ``publish <dir> <mailbox id> <count>``: ``count`` appends one after the other; prints
  ``<uid> <monotonic ns>`` the moment each one returned (committed and published).
* ``churn <dir> <mailbox id> <rounds> <size>``: appends ``body("shared", 0, size)`` and
  expunges it again (reading it back in between),
  ``rounds`` times, so the body's last reference goes away over and over; prints
  ``lost <n>``, the number of appended messages it could not read back.
* ``open <dir> <monotonic ns>``: waits for that moment (the clock is the machine's), then opens
  the store as a starting worker does and prints ``domains <n>``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from courriel.store.base import NewMessage, NotFound
from courriel.store.sqlite import SqliteStore, open_sqlite

WRITERS = 4


def body(tag: str, n: int, size: int = 2000) -> bytes:
    head = f"Subject: {tag} {n}\r\n\r\n".encode()
    return head + bytes((n * 13 + i) % 251 for i in range(size))


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def append(store: SqliteStore, mailbox_id: int, count: int, tag: str) -> None:
    async def writer(k: int) -> None:
        for n in range(k, count, WRITERS):
            msg = NewMessage(body(tag, n), datetime.now(UTC))
            [done] = await store.append([(mailbox_id, msg)])
            say(f"{n} {done.uid}")

    await asyncio.gather(*(writer(k) for k in range(WRITERS)))


async def publish(store: SqliteStore, mailbox_id: int, count: int) -> None:
    for n in range(count):
        [done] = await store.append(
            [(mailbox_id, NewMessage(body("p", n, 100), datetime.now(UTC)))]
        )
        say(f"{done.uid} {time.monotonic_ns()}")
        await asyncio.sleep(0.002)  # an idle subscriber: one change at a time


async def churn(store: SqliteStore, mailbox_id: int, rounds: int, raw: bytes) -> None:
    lost = 0
    for _ in range(rounds):
        [done] = await store.append([(mailbox_id, NewMessage(raw, datetime.now(UTC)))])
        try:
            lost += await store.read_message(mailbox_id, done.uid) != raw
        except NotFound:
            lost += 1  # a committed row whose body is gone: what must never happen
        await store.expunge(mailbox_id, [done.uid])
    say(f"lost {lost}")


async def main(mode: str, root: Path, args: list[str]) -> None:
    store = await open_sqlite(root / "courriel.db", root / "blobs")
    try:
        if mode == "append":
            await append(store, int(args[0]), int(args[1]), args[2])
        elif mode == "publish":
            await publish(store, int(args[0]), int(args[1]))
        elif mode == "churn":
            await churn(store, int(args[0]), int(args[1]), body("shared", 0, int(args[2])))
        elif mode == "open":
            say(f"domains {len(await store.list_domains())}")
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.close()


if __name__ == "__main__":
    if sys.argv[1] == "open":  # start together with the other processes of the test
        time.sleep(max(0.0, (int(sys.argv[3]) - time.monotonic_ns()) / 1e9))
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:]))
