"""Helpers for relay tests: a free loopback address on a port, and a transport pointed at test DNS.

Theory of operation
-------------------
The relay connects to port 25 of whatever address DNS gives, so each receiving server in a
test needs an address of its own on the loopback network (127.0.0.0/8 is all local on Linux).
``free_address`` tries 127.0.0.2 first, then random 127.x.y.z addresses, until binding
``port`` there works; several test runs on one machine then do not collide.
``make_transport`` builds an ``SmtpTransport`` with the test's DNS server, the test CA, and
timeouts scaled down so the misbehaving-server cases take a fraction of a second.
"""

from __future__ import annotations

import random
import socket
import tempfile
from pathlib import Path
from typing import Any

from courriel.net.mtasts import MtaSts
from courriel.net.resolver import DnsResolver
from courriel.net.smtp_client import ClientSettings, SmtpTransport
from courriel.net.smtp_conn import Timeouts

RECEIVER_DOMAIN = "receiver.test"
RECEIVER_USERS = [f"{u}@{RECEIVER_DOMAIN}" for u in ("alice", "bob", "carol")]
RECEIVER_NAMES = [f"{h}.{RECEIVER_DOMAIN}" for h in ("mx", "mx1", "mx2")]


def private_directory(prefix: str) -> Path:
    """A new directory in /tmp that other users may enter (pytest's own tree is root-only)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def free_address(port: int = 25, exclude: tuple[str, ...] = ()) -> str:
    """A loopback address where ``port`` was free a moment ago, not one of ``exclude``."""
    candidates = ["127.0.0.2"] + [
        f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        for _ in range(50)
    ]
    for address in candidates:
        if address in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
            return address
    raise RuntimeError(f"no free loopback address for port {port}")


def make_transport(
    nameserver: str,
    *,
    ca_file: Path | None = None,
    scale: float = 0.01,
    mta_sts_port: int | None = None,
    cache_dir: Path | None = None,
    **settings: Any,
) -> SmtpTransport:
    """A transport resolving through ``nameserver`` and trusting ``ca_file``."""
    dns = DnsResolver([nameserver], timeout=2.0)
    mta_sts = None
    if mta_sts_port is not None:
        mta_sts = MtaSts(
            dns, cache_dir, ca_file=str(ca_file) if ca_file else None, port=mta_sts_port, timeout=5
        )
    options: dict[str, Any] = {
        "helo_name": "relay.courriel.test",
        "timeouts": Timeouts().scaled(scale),
    }
    options.update(settings)
    if ca_file is not None:
        options["ca_file"] = str(ca_file)
    return SmtpTransport(ClientSettings(**options), dns, mta_sts)
