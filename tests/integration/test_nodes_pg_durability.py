"""A node killed with SIGKILL mid-write loses nothing it acknowledged (PostgreSQL backend)."""

from __future__ import annotations

import asyncio
import signal

import pytest
from test_nodes_pg import line_of, pg_url, setup_user, spawn  # noqa: F401 - pg_url is a fixture

from courriel.store.postgres import open_postgres_url

pytestmark = pytest.mark.postgres

ACKS_BEFORE_KILL = 150


async def test_acknowledged_appends_survive_sigkill(pg_url: str) -> None:  # noqa: F811
    _user_id, inbox_id = await setup_user(pg_url)
    node = await spawn("append", pg_url, inbox_id, 100_000, 4, "k")
    acked: dict[str, int] = {}
    try:
        assert node.stdin is not None
        node.stdin.write(b"go\n")
        while len(acked) < ACKS_BEFORE_KILL:
            _at, tag, uid, _modseq = (await line_of(node, 30)).split()
            acked[tag] = int(uid)
    finally:
        node.send_signal(signal.SIGKILL)
        assert node.stdout is not None
        # Whatever the node printed before it died was acknowledged too.
        for raw in (await node.stdout.read()).decode().splitlines():
            parts = raw.split()
            if len(parts) == 4:
                acked[parts[1]] = int(parts[2])
        await asyncio.wait_for(node.wait(), 10)
    assert node.returncode == -signal.SIGKILL
    assert len(set(acked.values())) == len(acked)  # no UID handed out twice
    store = await open_postgres_url(pg_url, pool_size=2)
    try:
        present = {m.uid: m for m in await store.list_messages(inbox_id)}
        for tag, uid in acked.items():
            assert uid in present, f"acknowledged message {tag} (UID {uid}) is gone"
            assert present[uid].flags == {"$k"}
            raw = await store.read_message(inbox_id, uid)
            assert raw == f"Subject: {tag}\r\n\r\nfrom node k\r\n".encode()
        box = await store.get_mailbox_by_id(inbox_id)
        assert box is not None and box.uidnext == len(present) + 1  # no half-written append
        assert sorted(present) == list(range(1, len(present) + 1))
    finally:
        await store.close()
