"""Which address and port each listener uses, decided by trying to bind.

Theory of operation
-------------------
A listener's ``address`` and ``port`` may each be "auto" ("" and 0). ``candidates`` turns the
configuration into the ordered places to try; ``bind_listener`` binds the first that works:

=================  ====================================  ======================================
address / port     first try                             then
=================  ====================================  ======================================
"" / 0             all addresses, standard port          127.0.0.1, 10000 + standard port
A / 0              A, standard port                      A, 10000 + standard port
"" / P             all addresses, P                      (error)
A / P              A, P                                  (error)
=================  ====================================  ======================================

So a root process (or one with CAP_NET_BIND_SERVICE) serves the standard ports to the world, and
an ordinary user trying courriel out gets working high ports on the loopback address, without
editing anything. Whether the process may bind is learnt by binding, never guessed from the uid:
containers and sysctls change the answer. When the standard port is taken by another program
(another mail server, say), the log says so plainly before falling back the same way.

"All addresses" is IPv4 and IPv6 as separate sockets (IPv6 with IPV6_V6ONLY, as asyncio does), so
peers appear with their real address family; a host without IPv6 gets the IPv4 socket alone.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from dataclasses import dataclass

from courriel.config import ListenerConfig

log = logging.getLogger("courriel.net")

FALLBACK_OFFSET = 10000
FALLBACK_ADDRESS = "127.0.0.1"
BACKLOG = 511


class BindError(Exception):
    """A listener cannot be bound; the message names the listener, the address and why."""


@dataclass(frozen=True, slots=True)
class Bound:
    """A listener's sockets, listening, and where they are."""

    config: ListenerConfig
    sockets: tuple[socket.socket, ...]
    address: str  # "" = all addresses
    port: int
    fallback: str = ""  # why the first choice was not used ("" when it was)

    @property
    def loopback_only(self) -> bool:
        return self.address != "" and is_loopback(self.address)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def display(address: str, port: int) -> str:
    if address == "":
        return f"*:{port}"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def candidates(lc: ListenerConfig, offset: int = FALLBACK_OFFSET) -> list[tuple[str, int]]:
    """The (address, port) places to try in order; "" is all addresses."""
    if lc.port:
        return [(lc.address, lc.port)]
    fallback_port = lc.standard_port + offset
    fallback = [(lc.address or FALLBACK_ADDRESS, fallback_port)] if fallback_port <= 65535 else []
    return [(lc.address, lc.standard_port), *fallback]


def bind_address(address: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``address`` ("" = every address) and ``port``; raises ``OSError``."""
    infos = socket.getaddrinfo(
        address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    seen: set[tuple[int, object]] = set()
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in infos:
            if (family, sockaddr) in seen:
                continue
            seen.add((family, sockaddr))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as e:
                # A host with IPv6 switched off still serves IPv4 on "all addresses".
                if address == "" and family == socket.AF_INET6 and e.errno == errno.EADDRNOTAVAIL:
                    sockets.pop().close()
                    continue
                raise
            sock.listen(BACKLOG)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"no usable address for {address or 'all addresses'}")
    return sockets


def _why(e: OSError, port: int) -> str:
    if e.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by another program"
    if e.errno == errno.EACCES:
        return (
            f"no permission to use port {port} (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        )
    return f"cannot use port {port}: {e.strerror or e}"


def bind_listener(lc: ListenerConfig, offset: int = FALLBACK_OFFSET) -> Bound:
    """Binds the first place of ``candidates`` that works; raises ``BindError`` if none does."""
    places = candidates(lc, offset)
    failure = fallback = ""
    for i, (address, port) in enumerate(places):
        try:
            sockets = bind_address(address, port)
        except OSError as e:
            reason = e.strerror or str(e)
            failure = f"cannot listen for {lc.name} on {display(address, port)}: {reason}"
            if i + 1 < len(places):
                nxt = display(*places[i + 1])
                level = logging.WARNING if e.errno == errno.EADDRINUSE else logging.INFO
                log.log(level, "%s; %s listens on %s instead", _why(e, port), lc.name, nxt)
                fallback = _why(e, port)
            continue
        return Bound(lc, tuple(sockets), address, port, fallback if i else "")
    raise BindError(failure)
