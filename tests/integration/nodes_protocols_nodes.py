"""Two ``courriel serve`` processes on one throw-away PostgreSQL database, for protocol tests.

Theory of operation
-------------------
``Cluster.start`` creates the database (``courriel.testing.pg``), writes a configuration for
node A and one for node B (each its own data directory, so its own self-signed certificate,
and its own loopback ports for imaps, pop3s and submission; the other listeners off), makes the
domain through node A's command line, then starts both nodes together and waits until each
prints that it is ready. Their output goes to files, never to pipes nobody reads (a full pipe
would stop a node mid-write); it is shown when a node fails.

Users are made with ``courriel user add --password-stdin`` as an administrator would, with
``COURRIEL_TEST_CHEAP_HASH=1`` so that hashing and every login cost milliseconds.

``Cluster.stop`` sends SIGTERM to both, waits a bounded time, SIGKILLs what is left, drops the
database whatever happened, and then reports a node that did not exit with status 0.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from courriel import config
from courriel.testing import pg as pg_testdb
from courriel.testing.net import free_ports

HOSTNAME = "mail.example.org"
DOMAIN = "example.org"
LISTENED = ("imaps", "pop3s", "submission")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0


async def _create_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _env() -> dict[str, str]:
    return {**os.environ, "COURRIEL_TEST_CHEAP_HASH": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


@dataclass(slots=True)
class Node:
    """One ``courriel serve`` process and where to reach it."""

    name: str
    root: Path
    url: str
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.root / config.CONFIG_NAME

    @property
    def out_path(self) -> Path:
        return self.root / "serve.out"

    @property
    def err_path(self) -> Path:
        return self.root / "serve.err"

    def write_config(self) -> None:
        lines = [
            f'hostname = "{HOSTNAME}"',
            "[store]",
            f'url = "{self.url}"',
            "pool_size = 5",
            "[auth]",
            "failure_delay_seconds = 0.1",
            "[limits]",
            "shutdown_grace_seconds = 2",
            "[log]",
            'level = "warning"',
        ]
        for name in config.LISTENERS:
            lines.append(f"[listeners.{name}]")
            if name in self.ports:
                lines += ['address = "127.0.0.1"', f"port = {self.ports[name]}"]
            else:
                lines.append("enabled = false")
        self.root.mkdir()
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def cli(self, *args: str, stdin: str = "") -> str:
        """Runs ``courriel --config <this node's> ARGS``; its standard output."""
        done = subprocess.run(
            [sys.executable, "-m", "courriel.cli", "--config", str(self.config_path), *args],
            input=stdin.encode(),
            capture_output=True,
            env=_env(),
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout.decode()

    def spawn(self) -> None:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "courriel.cli", "--config", str(self.config_path), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_env(),
            )

    def output(self) -> str:
        texts = (p.read_text(errors="replace") for p in (self.out_path, self.err_path))
        return f"node {self.name}:\n" + "\n".join(texts)

    def wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        while "courriel is ready" not in self.out_path.read_text(errors="replace"):
            assert self.proc.poll() is None, f"serve ended early\n{self.output()}"
            assert time.monotonic() < deadline, f"serve not ready in time\n{self.output()}"
            time.sleep(0.05)

    def signal_stop(self) -> None:
        """One SIGTERM: a second one, once the node has begun stopping, would kill it outright."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """The exit status, after SIGKILL when STOP_TIMEOUT passes first (then -9)."""
        proc = self.proc
        if proc is None:
            return 0
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(STOP_TIMEOUT)

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts exactly this node's self-signed certificate, names checked."""
        return ssl.create_default_context(cafile=str(self.root / "tls" / "cert.pem"))


@dataclass(slots=True)
class Cluster:
    """Node A and node B on one database (see the module docstring)."""

    server: str  # the PostgreSQL server's URL, for CREATE/DROP DATABASE
    database: str
    a: Node
    b: Node

    @classmethod
    def start(cls, root: Path, server: str) -> Cluster:
        database = f"courriel_test_{secrets.token_hex(8)}"
        asyncio.run(_create_database(server, database))
        url = pg_testdb.with_database(server, database)
        ports = free_ports(2 * len(LISTENED))
        half = len(LISTENED)
        a = Node("A", root / "node-a", url, dict(zip(LISTENED, ports[:half], strict=True)))
        b = Node("B", root / "node-b", url, dict(zip(LISTENED, ports[half:], strict=True)))
        cluster = cls(server, database, a, b)
        try:
            a.write_config()
            b.write_config()
            a.cli("domain", "add", DOMAIN)  # the schema is made here, before either node starts
            a.spawn()
            b.spawn()
            deadline = time.monotonic() + START_TIMEOUT
            a.wait_ready(deadline)
            b.wait_ready(deadline)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def url(self) -> str:
        return self.a.url

    def add_user(self, local_part: str, password: str) -> str:
        address = f"{local_part}@{DOMAIN}"
        said = self.a.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
        assert f"added user {address}" in said, said
        return address

    def stop(self) -> None:
        codes: dict[str, int] = {}
        try:
            for node in (self.a, self.b):
                node.signal_stop()  # both at once: they stop in parallel
            codes = {node.name: node.wait_stopped() for node in (self.a, self.b)}
        finally:
            asyncio.run(pg_testdb.drop_database(self.server, self.database))
        failed = [node.output() for node in (self.a, self.b) if codes.get(node.name, 0) != 0]
        assert not failed, (codes, failed)
