"""A relaying ``courriel serve`` (supervisor and worker processes) killed with SIGKILL while it
accepts and delivers: after a restart every acknowledged message reaches the other server, none
was queued twice, and a duplicate delivery exists only where no MTA can avoid one (the remote 250
arrived, our record of it did not). The relay sends through ``[relay] smarthost`` (STARTTLS,
verified) to a second courriel that receives for example.net.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from courriel import config
from courriel.config import LISTENERS, Config
from courriel.store.base import Store
from courriel.store.queue import RecipientState
from courriel.testing.fill import add_user, on_store
from courriel.testing.net import free_ports
from courriel.testing.server import Account, MailServer, make_message, write_config

PASSWORD = "correct horse battery"
SENDERS = 4
ACKS_BEFORE_KILL = 60
QUEUE = (
    "[queue]\nfirst_retry_seconds = 0.3\nmax_retry_seconds = 0.6\npoll_seconds = 0.2\n"
    "lease_seconds = 1\n"
)


def relay_config(receiver: MailServer) -> str:
    return QUEUE + (
        f'[relay]\nsmarthost = "127.0.0.1:{receiver.port("smtp")}"\n'
        f'smarthost_tls = "starttls"\ntls_ca_file = "{receiver.cert_path}"\n'
    )


def start_relay(cfg: Config) -> subprocess.Popen[bytes]:
    """``courriel serve`` on ``cfg``, once it accepts connections."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "courriel", "--config", str(cfg.path), "serve"]
    # A session of its own: SIGKILL goes to the supervisor and its worker processes at once.
    log = (cfg.data_dir / "serve.log").open("ab")  # read when an assertion fails
    child = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    log.close()
    deadline = time.monotonic() + 30
    while True:
        assert child.poll() is None, "the relay did not start"
        try:
            socket.create_connection(("127.0.0.1", cfg.listener("submission").port), 1).close()
            return child
        except OSError:
            if time.monotonic() > deadline:
                child.kill()
                raise AssertionError("the relay did not listen in time") from None
            time.sleep(0.05)


class Submitters:
    """Threads submitting distinct messages until the server goes away; ``acked`` has those
    that got 250."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.acked: set[str] = set()
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(SENDERS)]

    def run(self, k: int) -> None:
        context = ssl.create_default_context(cafile=str(self.cfg.data_dir / "tls" / "cert.pem"))
        port = self.cfg.listener("submission").port
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.starttls(context=context)
                s.login("alice@example.test", PASSWORD)
                for n in range(10_000):
                    subject = f"kill-{k}-{n}"
                    message = make_message(subject, sender="alice@example.test")
                    s.sendmail("alice@example.test", ["bob@example.net"], message)
                    with self.lock:
                        self.acked.add(subject)
        except (smtplib.SMTPException, OSError) as e:
            self.errors.append(e)  # killed: what was acknowledged before is in ``acked``


def subject_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.startswith(b"Subject: "):
            return line[9:].decode()
    raise AssertionError("no Subject")


def queued_subjects(cfg: Config) -> list[str]:
    """The subjects of the entries with a recipient still to deliver.

    An entry whose delivery was recorded but not yet dropped when the process died has
    none: the next worker that leases it only drops it.
    """

    async def read(store: Store) -> list[str]:
        out = []
        for e in await store.queue.list_entries():
            if any(r.state is RecipientState.QUEUED for r in e.recipients):
                out.append(subject_of((await store.queue.get(e.id)).message))
        return out

    return on_store(cfg, read)


def entries(cfg: Config) -> int:
    async def read(store: Store) -> int:
        return len(await store.queue.list_entries())

    return on_store(cfg, read)


@pytest.mark.slow
def test_sigkill_loses_nothing_and_queues_nothing_twice(
    tmp_path: Path, receiver: MailServer, bob: Account
) -> None:
    root = tmp_path / "relay"
    root.mkdir()
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    cfg = config.load(write_config(root, ports, relay_config(receiver)))
    on_store(cfg, lambda s: add_user(s, "alice@example.test", PASSWORD))

    child = start_relay(cfg)
    senders = Submitters(cfg)
    try:
        for t in senders.threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(senders.acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            # Failed before the kill: the server's log says why.
            assert not senders.errors, (cfg.data_dir / "serve.log").read_text()[-3000:]
            time.sleep(0.01)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        for t in senders.threads:
            t.join(15)
    assert len(senders.acked) >= ACKS_BEFORE_KILL
    acked = set(senders.acked)

    # Dead: the queue as it was left. No message is in two entries.
    left = queued_subjects(cfg)
    assert len(left) == len(set(left)), "a message was queued twice"

    def arrived() -> Counter[str]:
        return Counter(subject_of(raw) for raw in receiver.bodies(bob, "INBOX"))

    # A message whose end of data left the relay just before it died is still being stored by
    # the receiver: count once nothing more arrives.
    before = arrived()
    while True:
        time.sleep(0.3)
        now = arrived()
        if now == before:
            break
        before = now
    # The window no MTA can close: the other server has it, our record of that did not commit.
    window = {s for s in left if before[s] > 0}

    def done() -> bool:
        now = arrived()
        return acked <= set(now) and all(now[s] > before[s] for s in left)

    child = start_relay(cfg)
    try:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline, f"lost: {sorted(acked - set(arrived()))[:5]}"
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(20)
    assert child.returncode == 0
    assert entries(cfg) == 0  # everything left was delivered after the restart
    counts = arrived()
    twice = {s for s, c in counts.items() if c > 1}
    assert twice == window  # duplicates only from that window, none from the queue itself
    # at most one per delivery in flight: [queue] concurrency in each worker process
    assert len(window) <= cfg.queue.concurrency * cfg.server.worker_count()
    assert all(c <= 2 for c in counts.values())
    print(f"acknowledged {len(acked)}, delivered {len(counts)}, delivered twice {len(twice)}")
