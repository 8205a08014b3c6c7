"""Free loopback ports for tests that start real listeners.

Theory of operation
-------------------
The kernel picks a free port when a socket binds to port 0. To get ``n`` *distinct* ports, all
``n`` sockets are held open together while the kernel chooses, then closed so the server under
test can bind them. Another process could take a port in the short gap before the server binds;
on a test machine that is rare, and a server that fails to bind says so loudly.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback TCP ports that were free a moment ago."""
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
