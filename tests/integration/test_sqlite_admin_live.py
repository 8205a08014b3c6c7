"""The admin CLI against a running ``courriel serve`` on SQLite: its changes count at once.

The CLI opens the server's data directory as one more process (no lock keeps it out). A user it
adds logs in over IMAP at the next attempt; an alias it adds is accepted at the next RCPT and
delivers; a user it removes cannot log in any more, and a session of that user IDLE in the
server hears of it at once: the CLI publishes its changes to the server's processes.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes_protocols_clients import Imap, quote
from nodes_protocols_nodes import DOMAIN, Node

from courriel.testing.net import free_ports

PUSH_DEADLINE = 2.0  # seconds from the CLI's change to its effect in the server's session


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """One ``courriel serve`` on SQLite (``[store] url = ""``), imaps and submission only."""
    ports = free_ports(2)
    server = Node("S", tmp_path / "node", "", {"imaps": ports[0], "submission": ports[1]})
    server.write_config()
    server.cli("domain", "add", DOMAIN)
    server.spawn()
    try:
        server.wait_ready(time.monotonic() + 30)
        yield server
    finally:
        server.signal_stop()
        status = server.wait_stopped()
        assert status == 0, server.output()


def add_user(node: Node, local: str, password: str) -> str:
    address = f"{local}@{DOMAIN}"
    said = node.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    assert f"added user {address}" in said, said
    return address


async def login_answer(node: Node, address: str, password: str) -> bytes:
    """The tagged answer to LOGIN, whatever it is."""
    client = await Imap.connect(node.ports["imaps"], node.ssl_context())
    try:
        client.writer.write(f"a1 LOGIN {quote(address)} {quote(password)}\r\n".encode())
        while not (response := await client.read_response()).text.startswith(b"a1 "):
            pass
        return response.text
    finally:
        await client.close()


def submit(node: Node, address: str, password: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.ssl_context())
        smtp.login(address, password)
        assert smtp.sendmail(address, [to], raw) == {}


async def test_cli_changes_reach_the_running_server_at_once(node: Node) -> None:
    assert DOMAIN in node.cli("domain", "list")  # even reading was refused before
    alice = add_user(node, "alice", "alice-password-1")
    assert (await login_answer(node, alice, "alice-password-1")).startswith(b"a1 OK")
    bob = add_user(node, "bob", "bob-password-1")
    team = f"team@{DOMAIN}"
    node.cli("alias", "add", team, bob)
    raw = b"From: alice@example.org\r\nSubject: to the team\r\n\r\nhello\r\n"
    await asyncio.to_thread(submit, node, alice, "alice-password-1", team, raw)
    reader = await Imap.login(node.ports["imaps"], node.ssl_context(), bob, "bob-password-1")
    try:
        selected = await reader.command("SELECT INBOX")
        assert any(r.text == b"* 1 EXISTS" for r in selected.untagged), selected
    finally:
        await reader.close()

    # Alice is IDLE in the server when the CLI removes her.
    session = await Imap.login(node.ports["imaps"], node.ssl_context(), alice, "alice-password-1")
    try:
        await session.command("SELECT INBOX")
        await session.idle()
        await asyncio.to_thread(node.cli, "user", "remove", alice)
        await session.wait_for(rb"\* BYE .*", time.monotonic() + PUSH_DEADLINE)
    finally:
        await session.close()
    assert (await login_answer(node, alice, "alice-password-1")).startswith(b"a1 NO")
