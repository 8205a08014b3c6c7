"""A real DNS server for tests: Debian's dnsmasq on loopback, answering only for test zones.

Theory of operation
-------------------
``Zone`` collects records; ``start_dnsmasq`` runs ``dnsmasq`` in the foreground with no
configuration file, no /etc/hosts, no upstream servers (``--no-resolv``), listening on
127.0.0.1 and a free UDP/TCP port, and ``--local`` for each test domain so a name it does not
know is NXDOMAIN there (a name outside every test domain is REFUSED, which a client sees as a
server failure: a temporary error). The records are command-line options:

* ``--mx-host=domain,target,preference`` (target "." is a null MX, RFC 7505);
* ``--host-record=name,address...`` for A and AAAA;
* ``--txt-record=name,text`` (a comma in the text would start a second string);
* ``--cname=alias,target``;
* ``--dns-rr=name,52,hex`` for TLSA (type 52, RFC 6698).

dnsmasq does not validate DNSSEC for its own records, so its answers never carry the AD bit;
the DANE tests use ``courriel.testing.scripted_dns`` for that verdict. ``DnsServer.nameserver`` is
the ``"127.0.0.1:port"`` string for ``[dns] nameservers``. ``stop`` ends the process by its
id. The caller checks that the program exists (``need_program("dnsmasq")``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.message

from courriel.testing.net import free_port

DNSMASQ = "dnsmasq"


def program() -> str | None:
    return shutil.which(DNSMASQ) or (
        "/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq") else None
    )


@dataclass
class Zone:
    """Records to serve; every name must lie under one of ``domains``."""

    domains: list[str]
    mx: list[tuple[str, str, int]] = field(default_factory=list)  # (domain, host, preference)
    hosts: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses
    txt: dict[str, str] = field(default_factory=dict)
    cname: dict[str, str] = field(default_factory=dict)  # alias -> target
    tlsa: dict[str, list[tuple[int, int, int, bytes]]] = field(default_factory=dict)

    def options(self) -> list[str]:
        out = [f"--local=/{d}/" for d in self.domains]
        out += [f"--mx-host={d},{h},{p}" for d, h, p in self.mx]
        for name, addresses in self.hosts.items():
            out.append(f"--host-record={name}," + ",".join(addresses))
        out += [f"--txt-record={n},{t}" for n, t in self.txt.items()]  # no shell: no quotes
        out += [f"--cname={a},{t}" for a, t in self.cname.items()]
        for name, records in self.tlsa.items():
            for usage, selector, mtype, data in records:
                rdata = bytes([usage, selector, mtype]) + data
                out.append(f"--dns-rr={name},52,{rdata.hex()}")
        return out


@dataclass
class DnsServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ends a program a test started, by its id: SIGTERM, then SIGKILL after 10 seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _answers(port: int, name: str) -> bool:
    query = dns.message.make_query(name, "SOA")
    try:
        await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=0.2)
    except (dns.exception.DNSException, OSError):
        return False
    return True


@contextlib.asynccontextmanager
async def start_dnsmasq(zone: Zone) -> AsyncIterator[DnsServer]:
    """dnsmasq serving ``zone`` until the block ends."""
    path = program()
    if path is None:
        raise FileNotFoundError("dnsmasq is not installed")
    port = free_port()
    args = [
        path,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--pid-file=",
        "--user=nobody",
        "--log-facility=-",
        "--local-ttl=60",  # as real zones do, so the relay's DNS cache is exercised
        *zone.options(),
    ]
    proc = await asyncio.to_thread(
        subprocess.Popen, args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    server = DnsServer(proc, port)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"dnsmasq exited: {out.strip()}")
            if await _answers(port, zone.domains[0]):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("dnsmasq did not answer within 5 seconds")
        yield server
    finally:
        server.stop()
        if proc.stdout:
            proc.stdout.close()
