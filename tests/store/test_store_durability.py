"""Durability: every append acknowledged before a SIGKILL is there, byte for byte, after it."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from courriel.store.base import NewMessage
from courriel.store.sqlite import open_sqlite

CHILD = Path(__file__).with_name("durability_child.py")
ACKS_BEFORE_KILL = 150


def child_body() -> Callable[[int], bytes]:
    """The child's own ``durability_body``, so parent and child cannot disagree on content."""
    spec = importlib.util.spec_from_file_location("courriel_durability_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body: Callable[[int], bytes] = module.durability_body
    return body


def run_until_killed(root: Path) -> tuple[int, dict[int, int]]:
    """Starts the child, reads acknowledgements, kills it; (mailbox id, {n: uid})."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, str(CHILD), str(root)]
    acked: dict[int, int] = {}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        try:
            ready = proc.stdout.readline().split()
            assert ready[:1] == ["ready"], f"child did not start: {ready}"
            while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                n, uid = map(int, line.split())
                acked[n] = uid
        finally:
            proc.send_signal(signal.SIGKILL)
            # Whatever the child printed before it died was acknowledged too.
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 2:
                    acked[int(parts[0])] = int(parts[1])
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_KILL, "the child stopped acknowledging"
    return int(ready[1]), acked


async def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    body = child_body()
    mailbox_id, acked = await asyncio.to_thread(run_until_killed, tmp_path)
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        present = {m.uid: m for m in await store.list_messages(mailbox_id)}
        for n, uid in acked.items():
            assert uid in present, f"acknowledged message {n} (UID {uid}) is gone"
            assert present[uid].flags == {"\\Seen"}
            assert await store.read_message(mailbox_id, uid) == body(n)
        assert len(set(acked.values())) == len(acked)  # no UID was handed out twice
        box = await store.get_mailbox_by_id(mailbox_id)
        assert box is not None and box.uidnext > max(acked.values())
        # The store goes on where it stopped: new UIDs above everything handed out.
        [after] = await store.append([(mailbox_id, NewMessage(b"after", datetime.now(UTC)))])
        assert after.uid == box.uidnext
    finally:
        await store.close()
