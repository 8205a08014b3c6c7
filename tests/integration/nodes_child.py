"""One courriel node for the two-node tests: a process of its own on a shared PostgreSQL store.

``python nodes_child.py listen URL USER_ID``: subscribes to the user's changes, prints "ready",
then one line per change: "<unix time> <kind> <mailbox id> <uids, comma-separated>".

``python nodes_child.py append URL MAILBOX_ID COUNT WRITERS TAG``: waits for a line on stdin
(so that both nodes start together), then COUNT appends spread over WRITERS concurrent tasks,
printing "<unix time> <tag>-<n> <uid> <modseq>" as each is acknowledged, and "done" at the end.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from courriel.store.base import NewMessage
from courriel.store.postgres import open_postgres_url


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def listen(url: str, user_id: int) -> None:
    store = await open_postgres_url(url, pool_size=2)
    try:
        sub = await store.events.subscribe(user_id)
        emit("ready")
        async for change in sub:
            uids = ",".join(map(str, change.uids))
            emit(f"{time.time():.6f} {change.kind.value} {change.mailbox_id} {uids}")
    finally:
        await store.close()


async def append(url: str, mailbox_id: int, count: int, writers: int, tag: str) -> None:
    store = await open_postgres_url(url, pool_size=writers)
    try:
        emit("ready")
        await asyncio.to_thread(sys.stdin.readline)
        todo = iter(range(count))

        async def writer() -> None:
            for n in todo:
                raw = f"Subject: {tag}-{n}\r\n\r\nfrom node {tag}\r\n".encode()
                msg = NewMessage(raw, datetime.now(UTC), frozenset({"$" + tag}))
                [done] = await store.append([(mailbox_id, msg)])
                emit(f"{time.time():.6f} {tag}-{n} {done.uid} {done.modseq}")

        await asyncio.gather(*(writer() for _ in range(writers)))
        emit("done")
    finally:
        await store.close()


def main(argv: list[str]) -> None:
    if argv[1] == "listen":
        asyncio.run(listen(argv[2], int(argv[3])))
    elif argv[1] == "append":
        asyncio.run(append(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6]))
    else:
        raise SystemExit(f"unknown mode {argv[1]!r}")


if __name__ == "__main__":
    main(sys.argv)
