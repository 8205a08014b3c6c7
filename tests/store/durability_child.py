"""Appends messages until killed, printing "<n> <uid>" the moment each append is acknowledged.

Run by test_store_durability.py: ``python durability_child.py <dir>``. Message ``n`` is
``durability_body(n)``; the parent kills this process with SIGKILL and checks every acknowledged
message after reopening the store.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from courriel.store.base import NewMessage
from courriel.store.sqlite import open_sqlite

WRITERS = 4


def durability_body(n: int) -> bytes:
    head = f"Message-ID: <{n}@durability.example>\r\nSubject: n={n}\r\n\r\n".encode()
    return head + bytes((n * 7 + i) % 251 for i in range(4096 + n % 97))


async def main(root: Path) -> None:
    store = await open_sqlite(root / "courriel.db", root / "blobs")
    await store.add_domain("example.org")
    user = await store.add_user("d@example.org", "h")
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    sys.stdout.write(f"ready {inbox.id}\n")
    sys.stdout.flush()

    async def writer(k: int) -> None:
        n = k
        while True:
            msg = NewMessage(durability_body(n), datetime.now(UTC), frozenset({"\\Seen"}))
            [done] = await store.append([(inbox.id, msg)])
            sys.stdout.write(f"{n} {done.uid}\n")
            sys.stdout.flush()
            n += WRITERS

    await asyncio.gather(*(writer(k) for k in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
