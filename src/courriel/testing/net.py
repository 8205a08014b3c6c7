"""Free loopback ports for tests that start real listeners.

Theory of operation
-------------------
Ports are drawn at random *below* the kernel's ephemeral range (``ip_local_port_range``, 32768 and
up on Linux) and each is checked by binding it; the ``n`` sockets are held together while the
ports are chosen, so they are distinct, then closed so the server under test can bind them.

Why not let the kernel choose (bind to port 0): it chooses from the ephemeral range, which is
also where every outgoing connection of the machine takes its local port. In the short gap
between choosing a port and the server binding it, a connection from anything (the test's own
clients, PostgreSQL's, an ACME server's) could take it, and the server would fail with "address
already in use" (it happened, rarely, in a full run). Below that range only listeners bind, and
a port some listener holds fails the check and is skipped.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
FLOOR = 20000  # lowest port handed out: above the usual services' fixed ports
_TRIES = 10_000  # bound on the draws; hit only if nearly every port is taken


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback TCP ports that were free a moment ago, outside the ephemeral
    range."""
    low = _ephemeral_low()
    if n <= 0:
        return []
    if low - FLOOR < 1000:  # a machine whose ephemeral range starts low: let the kernel choose
        return _kernel_ports(n)
    socks: list[socket.socket] = []
    try:
        for _ in range(_TRIES):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((LOOPBACK, random.randrange(FLOOR, low)))
            except OSError:  # held by a listener, or drawn twice: draw again
                s.close()
                continue
            socks.append(s)
            if len(socks) == n:
                return [int(s.getsockname()[1]) for s in socks]
        raise RuntimeError(f"no {n} free ports found between {FLOOR} and {low}")
    finally:
        for s in socks:
            s.close()


def _kernel_ports(n: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One loopback TCP port that was free a moment ago."""
    return free_ports(1)[0]
