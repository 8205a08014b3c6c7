"""A private courriel: ``courriel serve`` as a child process with its own data directory.

Theory of operation
-------------------
``configure`` writes ``courriel.toml`` (data directory, host name, the ``smtp``, ``imaps`` and
``pop3s`` listeners on 127.0.0.1 and free high ports, the others off; the certificate is the
self-signed one courriel makes on first run) so the store can be
filled through its API before the server runs; ``start`` then runs the real command,
``python -m courriel --config <file> serve``, exactly as an administrator would, in its own
process, so its memory and CPU are its own and it runs on uvloop when uvloop is installed.

The configuration lifts the connection limits (all load comes from 127.0.0.1) and gives argon2id
the same cost as the hashes shared with Dovecot, so a login costs the same on both; every other
setting is courriel's default, including durable writes before each acknowledgement.

``configure_relay`` writes the configuration of the courriel the ``relay`` workload measures: a
second instance with only the ``submission`` listener (STARTTLS, AUTH), resolving mail hosts
through the run's private DNS server (``[dns] nameservers``), so its queue delivers along its
real MX path; every ``[queue]`` and ``[relay]`` setting is courriel's default.

``probe`` tells a live protocol from the stand-in that answers while a protocol engine is not
built in yet: SMTP's 554 greeting, IMAP's ``* BYE`` greeting, POP3's ``-ERR`` greeting.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.clients import ClientError, ImapClient, Pop3Client, SmtpClient
from bench.servers import (
    HOST,
    Endpoints,
    ServerError,
    free_ports,
    process_tree,
    spawn,
    terminate,
    wait_port,
)
from courriel.config import LISTENERS

HOSTNAME = "courriel.example.test"
HASH_TIME_COST = 1
HASH_MEMORY_KIB = 1024
HASH_PARALLELISM = 1  # Dovecot's libsodium verifies argon2id with one lane only

_HEAD = """\
data_dir = "{data}"
hostname = "{hostname}"

[auth]
argon2_time_cost = {t}
argon2_memory_kib = {m}
argon2_parallelism = {p}

[limits]
max_connections = 20000
max_connections_per_ip = 20000

[log]
level = "warning"

"""

# Postfix checks no SPF, DKIM or DMARC here either, and scores no junk; and the benchmark's
# domains exist in no DNS. (What scoring costs is measured with ``--junk``: docs/benchmarks.md.)
_MAILAUTH_OFF = "[mailauth]\ncheck_inbound = false\n\n[junk]\nscoring = false\n\n"
# ``--junk``: the same, with junk scoring on port 25 left at its default (on).
_JUNK_ON = "[mailauth]\ncheck_inbound = false\n\n"


def _config(data: Path, extra: str, ports: dict[str, int]) -> str:
    """The whole file: ``ports`` names the listeners to open; every other one is off, so a
    listener courriel gains later never binds a standard port during a benchmark."""
    head = _HEAD.format(
        data=data, hostname=HOSTNAME, t=HASH_TIME_COST, m=HASH_MEMORY_KIB, p=HASH_PARALLELISM
    )
    listeners = [
        f'[listeners.{name}]\naddress = "{HOST}"\nport = {ports[name]}\n'
        if name in ports
        else f"[listeners.{name}]\nenabled = false\n"
        for name in LISTENERS
    ]
    return head + extra + "".join(listeners)


@dataclass(frozen=True, slots=True)
class Setup:
    config: Path
    endpoints: Endpoints


def configure(root: Path, *, junk: bool = False) -> Setup:
    """Writes the configuration in ``root`` (created) and chooses the ports; ``junk``: junk
    scoring on port 25 stays on, as courriel's default has it."""
    data = root / "data"
    data.mkdir(parents=True, mode=0o700, exist_ok=True)
    smtp, imap, pop3 = free_ports(3)
    config = root / "courriel.toml"
    extra = _JUNK_ON if junk else _MAILAUTH_OFF
    config.write_text(_config(data, extra, {"smtp": smtp, "imaps": imap, "pop3s": pop3}))
    return Setup(config, Endpoints(smtp=smtp, imap=imap, pop3=pop3))


def configure_relay(root: Path, nameserver: str) -> Setup:
    """The relaying instance's configuration in ``root`` (created); its submission port is
    ``endpoints.smtp``."""
    data = root / "data"
    data.mkdir(parents=True, mode=0o700, exist_ok=True)
    (submission,) = free_ports(1)
    config = root / "courriel.toml"
    dns = f'[dns]\nnameservers = ["{nameserver}"]\n\n'
    config.write_text(_config(data, dns, {"submission": submission}))
    return Setup(config, Endpoints(smtp=submission))


class Courriel:
    name = "courriel"

    def __init__(self, proc: subprocess.Popen[bytes], endpoints: Endpoints) -> None:
        self.proc = proc
        self.endpoints = endpoints

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    async def stop(self) -> None:
        await terminate(self.proc, grace=20)


async def start(setup: Setup, log: Path, argv_prefix: tuple[str, ...] = ()) -> Courriel:
    """Runs ``courriel serve``; ``argv_prefix`` wraps it (a profiler) when given."""
    argv = [*argv_prefix, sys.executable, "-m", "courriel", "--config", str(setup.config), "serve"]
    proc = spawn(argv, log)
    instance = Courriel(proc, setup.endpoints)
    try:
        for port in (setup.endpoints.smtp, setup.endpoints.imap, setup.endpoints.pop3):
            if port is not None:
                await wait_port(port, 60, proc)
    except ServerError:
        await instance.stop()
        raise
    return instance


async def _greeting(protocol: str, port: int) -> bytes:
    if protocol == "smtp":
        client, line = await SmtpClient.connect(HOST, port, seconds=10)
        await client.close()
        return line
    if protocol == "imap":
        imap, line = await ImapClient.connect(HOST, port, seconds=10)
        await imap.close()
        return line
    pop, line = await Pop3Client.connect(HOST, port, seconds=10)
    await pop.close()
    return line


def _live(protocol: str, greeting: bytes) -> bool:
    if protocol == "smtp":
        return greeting.startswith(b"220")  # RFC 5321 §4.2: 220 is the service-ready greeting
    if protocol == "imap":
        return greeting.startswith((b"* OK", b"* PREAUTH"))  # RFC 9051 §7.1
    return greeting.startswith(b"+OK")  # RFC 1939 §4


async def probe(endpoints: Endpoints) -> dict[str, bool]:
    """Which protocols answer with a real greeting rather than the stand-in's refusal."""
    out: dict[str, bool] = {}
    for protocol in ("smtp", "imap", "pop3"):
        port = getattr(endpoints, protocol)
        if port is None:
            out[protocol] = False
            continue
        try:
            out[protocol] = _live(protocol, await _greeting(protocol, port))
        except (ClientError, OSError):
            out[protocol] = False
    return out
