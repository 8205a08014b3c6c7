"""A DNSSEC-signed test zone behind a real validating resolver, both on loopback.

Theory of operation
-------------------
DANE (RFC 7672) trusts TLSA records only when a validating resolver says so (the AD bit).
``start_dnssec`` builds that chain for real, in a private directory, with nothing of the
system's configuration touched and nothing started as a system service:

1. ``ldns-keygen`` makes an ECDSA P-256 key (algorithm 13) that signs the zone;
2. ``ldns-signzone`` signs the zone text (``SignedZone.text()``) with inception and expiration
   dates the caller chooses: dates in the past give a zone whose signatures have expired;
3. ``nsd`` serves the signed zone, authoritatively, on 127.0.0.1 and a free port;
4. ``unbound`` is the validating resolver on 127.0.0.1 and another port: a ``stub-zone`` sends
   the zone's queries to nsd, a ``trust-anchor`` is the zone's own key (there is no root to
   chain to), ``local-zone: "test." nodefault`` lifts unbound's built-in block on the
   reserved .test names, and ``do-not-query-localhost: no`` lets it ask a loopback server.

A valid zone comes back NOERROR with the AD bit; an expired one, or one whose TLSA signature
was spoiled after signing (``bogus_tlsa``: one character of that RRSIG changed, as a forger
would), is "bogus" to unbound, which answers SERVFAIL. ``Dnssec.nameserver`` is the
"127.0.0.1:port" of unbound, for ``[dns] nameservers``. Both programs run in the foreground
and are ended by their process ids. The caller checks the programs exist (``programs()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from courriel.testing.dnsmasq import DnsServer
from courriel.testing.net import free_ports

PROGRAMS = ("nsd", "unbound", "ldns-keygen", "ldns-signzone")
_SBIN = ("/usr/sbin", "/usr/bin")


def _which(name: str) -> str | None:
    found = shutil.which(name)
    for directory in _SBIN:
        found = found or shutil.which(f"{directory}/{name}")
    return found


def missing_programs() -> list[str]:
    """The programs of ``PROGRAMS`` this machine lacks."""
    return [p for p in PROGRAMS if _which(p) is None]


@dataclass
class SignedZone:
    """One zone: ``records`` are (owner relative to ``origin`` or "@", type, rdata) triples."""

    origin: str
    records: list[tuple[str, str, str]] = field(default_factory=list)
    valid_from: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    valid_until: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    )
    bogus_tlsa: bool = False  # spoil the TLSA signatures after signing

    def text(self) -> str:
        o = self.origin
        head = [
            f"$ORIGIN {o}.",
            "$TTL 60",
            f"@ IN SOA ns.{o}. hostmaster.{o}. 1 3600 600 86400 60",
            f"@ IN NS ns.{o}.",
            "ns IN A 127.0.0.1",
        ]
        return "\n".join(head + [f"{n} IN {t} {d}" for n, t, d in self.records]) + "\n"


@dataclass
class Dnssec:
    authoritative: DnsServer
    resolver: DnsServer
    trust_anchor: str  # the DNSKEY record unbound trusts

    @property
    def nameserver(self) -> str:
        return self.resolver.nameserver


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _spoil_tlsa_signatures(signed: Path) -> None:
    """Changes one base64 character of each RRSIG over TLSA: the signature no longer verifies."""
    lines = signed.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) > 5 and fields[3] == "RRSIG" and fields[4] == "TLSA":
            sig = fields[-1]
            middle = len(sig) // 2
            fields[-1] = sig[:middle] + ("A" if sig[middle] != "A" else "B") + sig[middle + 1 :]
            lines[i] = "\t".join(fields)
    signed.write_text("\n".join(lines) + "\n")


def sign(zone: SignedZone, directory: Path) -> tuple[Path, str]:
    """The signed zone file and the key to trust, made with the ldns tools."""
    stamp = "%Y%m%d%H%M%S"
    source = directory / "zone"
    source.write_text(zone.text())
    key = _run([str(_which("ldns-keygen")), "-a", "ECDSAP256SHA256", "-k", zone.origin], directory)
    signed = directory / "zone.signed"
    _run(
        [
            str(_which("ldns-signzone")),
            "-i",
            zone.valid_from.strftime(stamp),
            "-e",
            zone.valid_until.strftime(stamp),
            "-o",
            f"{zone.origin}.",
            "-f",
            str(signed),
            str(source),
            key,
        ],
        directory,
    )
    if zone.bogus_tlsa:
        _spoil_tlsa_signatures(signed)
    anchor = (directory / f"{key}.key").read_text().split(";")[0]
    return signed, " ".join(anchor.split())


def _nsd_conf(directory: Path, port: int, origin: str, signed: Path) -> str:
    return f"""server:
  ip-address: 127.0.0.1@{port}
  username: ""
  chroot: ""
  zonesdir: "{directory}"
  database: ""
  pidfile: "{directory}/nsd.pid"
  xfrdfile: "{directory}/xfrd.state"
  zonelistfile: "{directory}/zone.list"
  server-count: 1
  do-ip6: no
remote-control:
  control-enable: no
zone:
  name: "{origin}"
  zonefile: "{signed}"
"""


def _unbound_conf(directory: Path, port: int, origin: str, nsd_port: int, anchor: str) -> str:
    return f"""server:
  interface: 127.0.0.1
  port: {port}
  username: ""
  chroot: ""
  directory: "{directory}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  local-zone: "test." nodefault
  trust-anchor: "{anchor}"
  val-log-level: 2
stub-zone:
  name: "{origin}"
  stub-addr: 127.0.0.1@{nsd_port}
"""


async def _start(argv: list[str], port: int, origin: str) -> DnsServer:
    """Runs ``argv`` and waits until it answers for ``origin`` on ``port`` (any rcode)."""
    proc = await asyncio.to_thread(
        subprocess.Popen, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    server = DnsServer(proc, port)
    query = dns.message.make_query(origin, "NS")
    for _ in range(100):
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{argv[0]} exited: {out.strip()}")
        try:
            response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=0.2)
        except (dns.exception.DNSException, OSError):
            await asyncio.sleep(0.05)
            continue
        if response.rcode() != dns.rcode.REFUSED:
            return server
        await asyncio.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{argv[0]} did not answer within 5 seconds")


def _stop(server: DnsServer | None) -> None:
    if server is not None:
        server.stop()
        if server.process.stdout:
            server.process.stdout.close()


@contextlib.asynccontextmanager
async def start_dnssec(zone: SignedZone, directory: Path) -> AsyncIterator[Dnssec]:
    """nsd serving ``zone`` signed, unbound validating it, until the block ends."""
    signed, anchor = await asyncio.to_thread(sign, zone, directory)
    nsd_port, unbound_port = free_ports(2)
    nsd_conf = directory / "nsd.conf"
    nsd_conf.write_text(_nsd_conf(directory, nsd_port, zone.origin, signed))
    unbound_conf = directory / "unbound.conf"
    unbound_conf.write_text(_unbound_conf(directory, unbound_port, zone.origin, nsd_port, anchor))
    nsd: DnsServer | None = None
    unbound: DnsServer | None = None
    try:
        nsd = await _start([str(_which("nsd")), "-d", "-c", str(nsd_conf)], nsd_port, zone.origin)
        unbound = await _start(
            [str(_which("unbound")), "-d", "-c", str(unbound_conf)], unbound_port, zone.origin
        )
        yield Dnssec(nsd, unbound, anchor)
    finally:
        _stop(unbound)
        _stop(nsd)
