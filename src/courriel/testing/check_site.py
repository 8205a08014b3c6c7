"""A site for ``courriel check`` tests: a courriel server with a certificate from a test CA, users,
and a DNS server on loopback (dnsmasq) that publishes what a working set-up publishes: A, MX,
RFC 6186 SRV records and the autoconfig/autodiscover names, all pointing at the loopback ports.

``Site.check(...)`` runs ``courriel check`` in-process with the DNS server, the CA and the https
port given on its command line, the passwords on standard input, and returns the exit status,
the output, and the report as JSON when ``--json`` was asked.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from courriel import cli
from courriel.admin_dkim import dns_records
from courriel.dnsrecords import Record
from courriel.testing.certs import TestCA
from courriel.testing.dns import DnsServer, Zone
from courriel.testing.server import MailServer

if TYPE_CHECKING:
    import pytest

DOMAIN = "example.test"
HOST = f"mail.{DOMAIN}"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORD = "correct horse battery"  # noqa: S105 - a test account's
BOB_PASSWORD = "tr0ub4dor and 3"  # noqa: S105 - a test account's
CERT_NAMES = [HOST, f"autoconfig.{DOMAIN}", f"autodiscover.{DOMAIN}", DOMAIN]


@dataclass
class Result:
    status: int
    out: str
    err: str
    report: dict[str, Any] | None = None

    def steps(self, status: str | None = None) -> list[dict[str, Any]]:
        assert self.report is not None
        return [s for s in self.report["steps"] if status is None or s["status"] == status]

    def failures(self) -> list[tuple[str, str]]:
        """(step name, cause) of each failed step."""
        return [(s["name"], s["cause"]) for s in self.steps("fail")]


@dataclass
class Site:
    server: MailServer
    dns: DnsServer
    ca: TestCA
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    extra_ports: dict[str, int] = field(default_factory=dict)

    @property
    def nameserver(self) -> str:
        return f"{self.dns.address}:{self.dns.port}"

    def port(self, name: str) -> int:
        return self.server.port(name)

    def server_check(self, *argv: str, config: Path | None = None) -> Result:
        """``courriel check --server`` on this server's configuration (or ``config``), asking
        the test DNS."""
        path = config or self.server.cfg.path
        args = ["--config", str(path), "check", "--server", *argv]
        args += ["--dns", self.nameserver, "--timeout", "5"]
        self.capsys.readouterr()
        status = cli.main(args)
        out, err = self.capsys.readouterr()
        return Result(status, out, err, json.loads(out) if "--json" in argv else None)

    def check(self, *argv: str, stdin: str = PASSWORD + "\n", cafile: bool = True) -> Result:
        args = ["check", "--dns", self.nameserver, "--timeout", "5", "--wait", "10"]
        # The ports of argv come later and win over these.
        args += ["--port", f"https={self.port('https')},smtp={self.port('smtp')}", *argv]
        if cafile:
            args += ["--cafile", str(self.ca.ca_file)]
        self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        self.capsys.readouterr()
        status = cli.main(args)
        out, err = self.capsys.readouterr()
        report = json.loads(out) if "--json" in argv else None
        return Result(status, out, err, report)


SiteFactory = Callable[..., Site]


RecordEdit = Callable[[list[Record]], list[Record]]


def published(server: MailServer) -> list[Record]:
    """Every record ``courriel dns`` says the test domain must publish."""
    return server.call(dns_records(server.cfg, server.store, DOMAIN))


def zone_for(server: MailServer, edit: RecordEdit | None = None) -> Zone:
    """The records of a working set-up (``edit`` may change them), the host's address and its
    reverse name, and the domain's own address (for the .well-known autoconfig URL)."""
    records = published(server)
    if edit is not None:
        records = edit(records)
    z = Zone()
    z.a[HOST] = "127.0.0.1"
    z.a[DOMAIN] = "127.0.0.1"
    z.ptr["127.0.0.1"] = HOST
    for r in records:
        if r.type == "TXT":
            z.add_txt(r.name, r.value)
        elif r.type == "MX":
            preference, target = r.value.split()
            z.mx.setdefault(r.name, []).append((int(preference), target))
        elif r.type == "SRV":
            priority, weight, port, target = r.value.split()
            z.srv[r.name] = (int(priority), int(weight), int(port), target)
        elif r.type == "CNAME":
            z.cname[r.name] = r.value
    return z
