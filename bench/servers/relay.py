"""The private mail path of the ``relay`` workload: DNS, a receiving Postfix, and two relays.

Theory of operation
-------------------
``start`` builds, under a directory of the run, everything a relayed message crosses:

* a private CA (``courriel.testing.certs.TestCA``) and certificates for the receiver and the
  Postfix relayer, so every hop can use STARTTLS;
* the *receiver*, standing for the rest of the internet: a Debian Postfix
  (``courriel.testing.postfix.start_postfix``) on port 25 of a loopback address of its own
  (``courriel.testing.relay.free_address``), receiving for ``receiver.test`` into Maildirs;
* a DNS server for ``receiver.test`` (``courriel.testing.dnsmasq``): its MX ``mx.receiver.test``
  and that host's address;
* the courriel under test, a second instance beside the one of the other workloads
  (``courriel_server.configure_relay``): submission only, its sending account made through
  the store API, resolving through that DNS server -- so each message takes courriel's real MX
  path: MX, address, TLSA and MTA-STS lookups (answered from its DNS cache after the first),
  then SMTP to port 25;
* with the comparison, the Postfix relayer (``postfix.start_relayer``), which sends to
  ``relayhost = [receiver]:25``. Postfix resolves through the system's resolver only (port 53,
  ``/etc/resolv.conf``), which cannot be pointed at a private DNS server, so it skips the MX
  lookup; with courriel's lookups cached, that leaves the same work per message on both sides.

``delivered`` counts the files in the receiver's Maildirs: a message counts once the receiver's
``virtual`` agent has written it. ``problem`` says, before anything starts, why the path
cannot be built here (it needs root for port 25 and Postfix's daemons, and dnsmasq).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.fill import fill_courriel
from bench.servers import ServerError, make_dirs
from bench.servers import courriel as courriel_server
from bench.servers import postfix as postfix_server
from courriel.testing import dnsmasq
from courriel.testing import postfix as receiving
from courriel.testing.certs import TestCA
from courriel.testing.relay import free_address

RECEIVER_DOMAIN = "receiver.test"
MX = f"mx.{RECEIVER_DOMAIN}"


def receivers(count: int) -> list[str]:
    """The receiver's addresses the load rotates over."""
    return [f"relay{i}@{RECEIVER_DOMAIN}" for i in range(count)]


def problem() -> str | None:
    """Why the relay path cannot run on this machine; None when it can."""
    if os.geteuid() != 0:
        return "relay: not root (the receiving Postfix listens on port 25)"
    if not receiving.available() or not postfix_server.available():
        return "relay: Postfix is not installed (it is the receiving server)"
    if dnsmasq.program() is None:
        return "relay: dnsmasq is not installed (it serves the receiver's MX)"
    return None


@dataclass
class RelayPath:
    receiver: receiving.Postfix
    courriel: courriel_server.Courriel
    postfix: postfix_server.Postfix | None  # None without the comparison
    users: Sequence[str]

    def delivered(self) -> int:
        """Messages in the receiver's Maildirs now."""
        total = 0
        for user in self.users:
            with contextlib.suppress(FileNotFoundError):
                total += sum(1 for _ in os.scandir(self.receiver.maildir(user)))
        return total


def zone(address: str) -> dnsmasq.Zone:
    return dnsmasq.Zone(
        domains=[RECEIVER_DOMAIN], mx=[(RECEIVER_DOMAIN, MX, 10)], hosts={MX: [address]}
    )


@contextlib.asynccontextmanager
async def start(
    root: Path, sender: str, password_hash: str, users: Sequence[str], compare: bool
) -> AsyncIterator[RelayPath]:
    """The whole path under ``root`` (created, 0755: Postfix's users walk through it) until
    the block ends; raises ``ServerError`` when a part does not start."""
    make_dirs(root, 0, 0)
    async with contextlib.AsyncExitStack() as stack:
        try:
            path = await _start_all(stack, root, sender, password_hash, users, compare)
        except (OSError, RuntimeError) as e:  # the test helpers raise RuntimeError
            raise ServerError(f"relay path: {e}") from e
        yield path


async def _start_all(
    stack: contextlib.AsyncExitStack,
    root: Path,
    sender: str,
    password_hash: str,
    users: Sequence[str],
    compare: bool,
) -> RelayPath:
    ca = TestCA(root / "ca")
    address = free_address(25)  # port 25 there: courriel's MX path knows no other port
    cert, key = ca.issue("receiver", [MX])
    rx = await stack.enter_async_context(
        receiving.start_postfix(
            root / "receiver",
            address=address,
            domains=[RECEIVER_DOMAIN],
            users=users,
            cert=cert,
            key=key,
        )
    )
    dns = await stack.enter_async_context(dnsmasq.start_dnsmasq(zone(address)))
    setup = courriel_server.configure_relay(root / "courriel", dns.nameserver)
    await fill_courriel(setup.config, [sender], {}, password_hash)
    relay = await courriel_server.start(setup, root / "courriel" / "serve.log")
    stack.push_async_callback(relay.stop)
    pf = None
    if compare:
        cert, key = ca.issue("relayer", ["relayer.example.test"])
        pf = await postfix_server.start_relayer(root / "postfix", f"[{address}]:25", cert, key)
        stack.push_async_callback(pf.stop)
    return RelayPath(rx, relay, pf, users)
