"""Two ``courriel serve`` processes, each with its own configuration and ports, one database.

Both start together on an empty PostgreSQL database (so they race the schema migrations and the
first-run setup), serve on their own ports, and stop cleanly on SIGTERM. That mail delivered
through one is read through the other belongs with the protocol sessions; here the nodes share
the store and the events (test_nodes_pg.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from test_nodes_pg import pg_url  # noqa: F401 - a fixture

from courriel import config
from courriel.store.open import open_store
from courriel.testing.net import free_ports

pytestmark = pytest.mark.postgres


def node_config(root: Path, url: str, port: int) -> Path:
    root.mkdir()
    listeners = "".join(
        f"[listeners.{name}]\nenabled = false\n" for name in config.LISTENERS if name != "pop3"
    )
    path = root / "courriel.toml"
    path.write_text(
        f'hostname = "mail.example.org"\n[store]\nurl = "{url}"\n{listeners}'
        f'[listeners.pop3]\nenabled = true\naddress = "127.0.0.1"\nport = {port}\n',
        encoding="utf-8",
    )
    return path


async def start(cfg: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "COURRIEL_TEST_CHEAP_HASH": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "courriel.cli",
        "--config",
        str(cfg),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def until_running(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    out = b""
    async with asyncio.timeout(30):
        while b"courriel is running" not in out and b"courriel is ready" not in out:
            chunk = await proc.stdout.read(4096)
            assert chunk, f"serve ended early: {out!r}"
            out += chunk
    return out.decode()


async def test_two_serve_processes_share_one_database(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    ports = free_ports(2)
    cfgs = [node_config(tmp_path / f"node{i}", pg_url, ports[i]) for i in range(2)]
    nodes = [await start(cfg) for cfg in cfgs]
    try:
        outs = [await until_running(node) for node in nodes]
        for port in ports:  # each node answers on its own port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            assert reader is not None
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(node.wait(), 30) for node in nodes]
        errs = [(await node.stderr.read()).decode() for node in nodes if node.stderr]
        assert codes == [0, 0], errs
    finally:
        for node in nodes:
            if node.returncode is None:
                node.kill()
                await node.wait()
    # One store for both (one service name): one first-run demo account, shown by the node that
    # made it, however the two starts interleaved.
    store = await open_store(config.load(cfgs[0]))
    try:
        users = await store.list_users()
    finally:
        await store.close()
    shown = [out for out in outs if "password:" in out]
    assert len(users) == len(shown) == 1
