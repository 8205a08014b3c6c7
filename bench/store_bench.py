"""Store throughput: appends/s and flag updates/s on SQLite and PostgreSQL, 1 and 20 writers.

Theory of operation
-------------------
For each backend and writer count, a fresh store gets one user per writer (so writers do not
queue on one mailbox's row lock, as with SMTP sessions delivering to different people). Each
writer appends distinct 4 KB messages one call at a time, then sets and clears ``\\Seen`` on
them one UID per call (one IMAP STORE each). Every call returns only once durable, so the rate
includes the commits: SQLite's group commit, PostgreSQL's concurrent WAL flushes. Each cell is
the median of three runs on a new store. PostgreSQL: a ``courriel_bench_<random>`` database on
the server of COURRIEL_BENCH_PG (else COURRIEL_TEST_PG, else postgres@127.0.0.1), dropped after;
skipped with a note when unreachable.

Run: ``python -m bench.store_bench [--ops N]``; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from courriel.store.base import FlagOp, NewMessage, Store
from courriel.store.sqlite import open_sqlite

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
WRITERS = (1, 20)
RUNS = 3
BODY = 4096
SEEN = frozenset({"\\Seen"})

Opener = Callable[[], AsyncIterator[Store]]


@asynccontextmanager
async def sqlite_store() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory(prefix="courriel-bench-") as tmp:
        store = await open_sqlite(Path(tmp) / "courriel.db", Path(tmp) / "blobs")
        try:
            yield store
        finally:
            await store.close()


def pg_server() -> str:
    return os.environ.get("COURRIEL_BENCH_PG") or os.environ.get("COURRIEL_TEST_PG", DEFAULT_PG)


@asynccontextmanager
async def postgres_store(writers: int) -> AsyncIterator[Store]:
    import asyncpg

    from courriel.store.postgres import open_postgres_url

    server = pg_server()
    name = f"courriel_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(server)._replace(path="/" + name))
        store = await open_postgres_url(url, pool_size=max(10, writers))
        try:
            yield store
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def message(writer: int, n: int) -> NewMessage:
    head = f"From: w{writer}@bench.example\r\nSubject: {writer}-{n}\r\n\r\n".encode()
    return NewMessage(head + b"x" * (BODY - len(head)), datetime.now(UTC))


async def timed(writers: int, work: Callable[[int], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(work(w) for w in range(writers)))
    return time.perf_counter() - start


async def one_run(store: Store, writers: int, ops: int) -> tuple[float, float]:
    """(appends/s, flag updates/s) for ``ops`` calls of each kind spread over ``writers``."""
    await store.add_domain("bench.example")
    boxes = []
    for w in range(writers):
        user = await store.add_user(f"w{w}@bench.example", "x")
        box = await store.get_mailbox(user.id, "INBOX")
        assert box is not None
        boxes.append(box.id)
    share = [ops // writers + (1 if w < ops % writers else 0) for w in range(writers)]

    async def appender(w: int) -> None:
        for n in range(share[w]):
            await store.append([(boxes[w], message(w, n))])

    async def flagger(w: int) -> None:
        for n in range(share[w]):
            op = FlagOp.ADD if n % 2 == 0 else FlagOp.REMOVE
            await store.store_flags(boxes[w], [n // 2 + 1], op, SEEN)

    appended = await timed(writers, appender)
    flagged = await timed(writers, flagger)
    return ops / appended, ops / flagged


async def measure(backend: str, writers: int, ops: int) -> tuple[float, float]:
    appends, flags = [], []
    for _ in range(RUNS):
        opener = sqlite_store() if backend == "sqlite" else postgres_store(writers)
        async with opener as store:
            a, f = await one_run(store, writers, ops)
        appends.append(a)
        flags.append(f)
    return statistics.median(appends), statistics.median(flags)


async def pg_reachable() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(pg_server(), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        return str(e)
    await conn.close()
    return None


async def main_async(ops: int) -> int:
    backends = ["sqlite"]
    why = await pg_reachable()
    if why is None:
        backends.append("postgres")
    rows = []
    for backend in backends:
        for writers in WRITERS:
            count = ops if writers == 1 else ops * 4
            a, f = await measure(backend, writers, count)
            rows.append((backend, writers, a, f))
    print(f"store throughput, {BODY // 1024} KB messages, median of {RUNS} runs")
    print(f"{'backend':<10} {'writers':>7} {'appends/s':>10} {'flags/s':>10}")
    for backend, writers, a, f in rows:
        print(f"{backend:<10} {writers:>7} {a:>10.0f} {f:>10.0f}")
    if why is not None:
        print(f"postgres: not measured, {pg_server()} unreachable ({why})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_bench", description=__doc__)
    parser.add_argument("--ops", type=int, default=500, help="calls per run with 1 writer")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.ops))


if __name__ == "__main__":
    sys.exit(main())
