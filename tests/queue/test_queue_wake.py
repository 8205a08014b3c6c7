"""``courriel queue flush`` and ``release`` from the command line are acted on at once by a
running server, through the store's change events, although the server would look for due
entries by itself only every ``poll_seconds`` (set to two minutes here). On SQLite the hint
crosses from the command's store to the server's as a unix datagram, on PostgreSQL as a NOTIFY.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from courriel import cli
from courriel.queue.transport import Status
from courriel.store.base import NotFound
from courriel.testing.outbound import PASSWORD, submit, wait_until
from courriel.testing.server import MailServer, start_server
from courriel.testing.transports import ScriptedTransport

SLOW_QUEUE = (
    "[queue]\nfirst_retry_seconds = 120\nmax_retry_seconds = 240\ngive_up_seconds = 3600\n"
    "delay_warning_seconds = 0\npoll_seconds = 120\nlease_seconds = 30\n"
)
PROMPT = 1.0  # seconds from the command's return to the next attempt


def courriel(server: MailServer, *argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert cli.main(["--config", str(server.cfg.path), *argv]) == 0
    return out.getvalue()


def settled(server: MailServer, queue_id: str, attempts: int) -> Callable[[], bool]:
    """True once the entry's attempt ``attempts`` is recorded and its lease given back."""

    def check() -> bool:
        try:
            e = server.call(server.store.queue.get(queue_id))
        except NotFound:
            return False
        return e.lease_owner is None and e.recipients[0].attempts == attempts

    return check


def acted_on(transport: ScriptedTransport, address: str, attempts: int) -> float:
    """Seconds until the transport saw attempt ``attempts`` for ``address``."""
    started = time.monotonic()
    wait_until(f"attempt {attempts}", lambda: transport.attempts(address) >= attempts, 10)
    return time.monotonic() - started


def test_flush_and_release_wake_the_running_server_at_once(
    tmp_path: Path, store_config: str
) -> None:
    transport = ScriptedTransport()
    transport.script["bob@example.net"] = [Status.TEMPORARY, Status.DELIVERED]
    transport.script["carol@example.net"] = [Status.TEMPORARY, Status.DELIVERED]
    server = start_server(tmp_path, transport=transport, extra_config=SLOW_QUEUE + store_config)
    try:
        alice = server.add_user("alice@example.test", PASSWORD)
        flushed = submit(server, alice, "bob@example.net", "flushed")
        wait_until("the first attempt is recorded", settled(server, flushed, 1))
        assert "1 message(s) will be tried again now" in courriel(server, "queue", "flush")
        assert acted_on(transport, "bob@example.net", 2) < PROMPT

        released = submit(server, alice, "carol@example.net", "released")
        wait_until("the first attempt is recorded", settled(server, released, 1))
        courriel(server, "queue", "hold", released)
        courriel(server, "queue", "release", released)
        assert acted_on(transport, "carol@example.net", 2) < PROMPT
        assert transport.attempts("bob@example.net") == 2  # nothing else was woken twice
    finally:
        server.stop()
