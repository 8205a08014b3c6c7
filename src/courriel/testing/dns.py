"""A real DNS server for tests: Debian's dnsmasq on loopback, records given on its command line.

Theory of operation
-------------------
``Zone`` collects the records a test needs (TXT, A/AAAA, MX, PTR). ``DnsServer`` starts dnsmasq
with command-line options only -- no configuration file, no /etc/hosts, no upstream server
(``--no-resolv``), answering NXDOMAIN for every name it does not hold (``--local=/#/``) -- on
``address``:``port`` (TCP and UDP), waits until it answers, and stops it at the end. TXT values
longer than 255 octets are split into several strings of one record, as a zone file would.

``silent_port`` holds a UDP and a TCP socket that never answer, for DNS timeouts.

The address can be any of 127.0.0.0/8, so a test that needs port 53 (a program that reads
/etc/resolv.conf, which has no port) can have it on an address of its own without meeting
another test's server.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from courriel.testing.net import LOOPBACK


@dataclass
class Zone:
    txt: dict[str, list[str]] = field(default_factory=dict)
    a: dict[str, str] = field(default_factory=dict)  # name -> IPv4 or IPv6 address
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    ptr: dict[str, str] = field(default_factory=dict)  # address -> name
    srv: dict[str, tuple[int, int, int, str]] = field(default_factory=dict)  # prio, weight, port
    cname: dict[str, str] = field(default_factory=dict)  # alias -> target (held here too)

    def add_txt(self, name: str, text: str) -> None:
        self.txt.setdefault(name, []).append(text)

    def options(self) -> list[str]:
        out = []
        for name, texts in self.txt.items():
            for text in texts:
                chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
                # dnsmasq splits the value at commas into the strings of one record; a value
                # with a comma of its own cannot be served this way.
                if "," in text:
                    raise ValueError(f"TXT value with a comma: {text!r}")
                out.append(f"--txt-record={name}," + ",".join(chunks))
        for name, address in self.a.items():
            out.append(f"--host-record={name},{address}")
        for name, exchanges in self.mx.items():
            for pref, host in exchanges:
                out.append(f"--mx-host={name},{host},{pref}")
        for address, name in self.ptr.items():
            out.append(f"--ptr-record={_reverse(address)},{name}")
        for name, (priority, weight, port, target) in self.srv.items():
            out.append(f"--srv-host={name},{target},{port},{priority},{weight}")
        for alias, target in self.cname.items():
            out.append(f"--cname={alias},{target}")
        return out


def sbin_program(name: str) -> str | None:
    """``name`` on PATH, else in /usr/sbin (dnsmasq and opendkim-testmsg live there, and a
    user's PATH may not name it)."""
    return shutil.which(name) or shutil.which(f"/usr/sbin/{name}")


def dnsmasq_program(nodeid: str) -> str:
    """The dnsmasq program; skips (or fails, where every tool is required) the test without it."""
    from courriel.testing.missing import report_missing

    program = sbin_program("dnsmasq")
    if program is None:
        report_missing("program 'dnsmasq'", nodeid)
    assert program is not None
    return program


def _reverse(address: str) -> str:
    import dns.reversename

    return dns.reversename.from_address(address).to_text(omit_final_dot=True)


def free_udp_port(address: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP on ``address`` a moment ago."""
    for _ in range(50):
        port = random.randint(20000, 60000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            try:
                u.bind((address, port))
                t.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a DNS server")


class DnsServer:
    """dnsmasq serving ``zone`` on ``address``:``port`` until ``stop``."""

    def __init__(self, program: str, zone: Zone, *, address: str = LOOPBACK, port: int = 0):
        self.address = address
        self.port = port or free_udp_port(address)
        self._args = [
            program,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            f"--port={self.port}",
            f"--listen-address={address}",
            "--bind-interfaces",
            "--local=/#/",
            "--cache-size=0",  # the tests change nothing, but a cache would hide a wrong answer
            "--log-facility=-",
            *zone.options(),
        ]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, probe: str = "probe.invalid") -> None:
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        query = dns.message.make_query(probe, "TXT")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {err.strip()}")
            with contextlib.suppress(dns.exception.Timeout, OSError):
                dns.query.udp(query, self.address, port=self.port, timeout=0.2)
                return
        self.stop()
        raise RuntimeError("dnsmasq did not answer within 10 seconds")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_with_nameserver(
    args: list[str], nameserver: str, stdin: bytes, tmp: Path
) -> subprocess.CompletedProcess[bytes]:
    """Runs ``args`` seeing an /etc/resolv.conf of its own that names only ``nameserver``.

    For programs that use the C library's resolver, which takes no port and no server but the
    ones in /etc/resolv.conf: a private mount namespace (``unshare -m``, root only) binds a file
    over it for this one process, and nothing else on the machine sees the change.
    """
    conf = tmp / "resolv.conf"
    conf.write_text(f"nameserver {nameserver}\noptions timeout:2 attempts:1\n")
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(conf), *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


@contextlib.contextmanager
def silent_port(address: str = LOOPBACK) -> Iterator[int]:
    """A port on ``address`` where a DNS question is received and never answered."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind((address, 0))
            port = u.getsockname()[1]
            try:
                t.bind((address, port))  # the same number for TCP may be taken: try another
            except OSError:
                continue
            t.listen()
            yield int(port)
            return
    raise RuntimeError("no port free for both UDP and TCP")
