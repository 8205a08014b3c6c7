"""``courriel check`` against a private Dovecot (Debian's dovecot-imapd and dovecot-pop3d): the
check is no courriel-only tool. Dovecot serves IMAP and POP3 only; submission is not part of
this set-up, so the check must say exactly that and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from courriel import cli
from courriel.check import explain
from courriel.testing import dovecot, postfix
from courriel.testing.certs import TestCA, self_signed
from courriel.testing.dns import DnsServer, Zone
from courriel.testing.missing import report_missing
from courriel.testing.net import free_ports
from courriel.testing.relay import private_directory

ALICE = "alice@example.test"
PASSWORD = "dovecot secret"
HOST = "imap.example.test"
SERVICES = ("imaps", "imap", "pop3s", "pop3")


@contextlib.contextmanager
def running(
    cert: Path, key: Path, dnsmasq: str, extra_srv: dict[str, int] | None = None
) -> Iterator[tuple[dovecot.Dovecot, str]]:
    """Dovecot, and a DNS server publishing its SRV records, host address and an MX."""
    # Dovecot's auth process reads the user file as its own user: no root-only parents.
    root = private_directory("courriel-check-dovecot-")
    try:
        with dovecot.start_dovecot(root, users={ALICE: PASSWORD}, cert=cert, key=key) as d:
            zone = Zone()
            zone.a[HOST] = d.address
            zone.mx["example.test"] = [(10, HOST)]
            for service in SERVICES:
                zone.srv[f"_{service}._tcp.example.test"] = (0, 1, d.ports[service], HOST)
            for service, port in (extra_srv or {}).items():
                zone.srv[f"_{service}._tcp.example.test"] = (0, 1, port, HOST)
            with DnsServer(dnsmasq, zone) as dns:
                yield d, f"{dns.address}:{dns.port}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def need_dovecot(request: pytest.FixtureRequest) -> None:
    if dovecot.program() is None:
        report_missing("program 'dovecot'", request.node.nodeid)


def check_all(
    argv: list[str],
    stdin: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, list[dict[str, Any]]]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    capsys.readouterr()
    status = cli.main(["check", ALICE, "--password-stdin", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)["steps"]


def check(
    argv: list[str],
    stdin: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, list[dict[str, Any]]]:
    return check_all([*argv, "--no-round-trip"], stdin, capsys, monkeypatch)


def test_imap_and_pop3_pass_against_dovecot(
    tmp_path: Path,
    dnsmasq: str,
    need_dovecot: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("dovecot", [HOST])
    with running(cert, key, dnsmasq) as (d, nameserver):
        argv = ["--dns", nameserver, "--cafile", str(ca.ca_file), "--port", "https=1"]
        status, steps = check(argv, PASSWORD + "\n", capsys, monkeypatch)
        # A wrong password, on the implicit-TLS ports only (Dovecot slows down repeated
        # failures from one address, so fewer attempts keep the test fast).
        ports = f"imaps={d.ports['imaps']},pop3s={d.ports['pop3s']}"
        argv = ["--server", HOST, "--port", ports, "--dns", nameserver]
        _, wrong = check([*argv, "--cafile", str(ca.ca_file)], "not it\n", capsys, monkeypatch)
    ok = {(s["section"], s["name"]) for s in steps if s["status"] == "ok"}
    failed = [(s["section"], s["name"], s["cause"]) for s in steps if s["status"] == "fail"]
    for service in SERVICES:
        section = f"{service.rstrip('s').upper()} {HOST}:{d.ports[service]} ({service})"
        assert (section, "login") in ok and (section, "TLS") in ok, failed
    assert (f"IMAP {HOST}:{d.ports['imap']} (imap)", "no password before TLS") in ok
    assert (f"POP3 {HOST}:{d.ports['pop3']} (pop3)", "no password before TLS") in ok
    found = next(s for s in steps if s["name"] == "SRV (RFC 6186)")
    assert f"imaps {HOST}:{d.ports['imaps']}" in found["detail"]
    # Dovecot alone sends no mail and does not listen on port 25: the check says so.
    assert failed == [
        ("summary", "sending mail", explain.NO_OUTGOING.cause),
        (f"SMTP MX {HOST}:25 (smtp)", "connect", explain.REFUSED.cause),
    ]
    assert status == 1
    logins = [s for s in wrong if s["name"] == "login"]
    assert [s["cause"] for s in logins] == [explain.LOGIN_REFUSED.cause] * 2
    assert "[AUTHENTICATIONFAILED]" in logins[0]["detail"]
    assert "-ERR [AUTH]" in logins[1]["detail"]


def test_self_signed_dovecot_with_insecure(
    tmp_path: Path,
    dnsmasq: str,
    need_dovecot: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = self_signed(tmp_path / "certs", "dovecot", [HOST])
    with running(cert, key, dnsmasq) as (_, nameserver):
        argv = ["--dns", nameserver, "--port", "https=1"]
        status, refused = check(argv, PASSWORD + "\n", capsys, monkeypatch)
        _, accepted = check([*argv, "--insecure"], PASSWORD + "\n", capsys, monkeypatch)
    tls = [s for s in refused if s["name"] == "TLS"]
    assert [(s["status"], s["cause"]) for s in tls] == [("fail", explain.TLS_SELF_SIGNED.cause)] * 4
    assert status == 1
    warned = [s for s in accepted if s["status"] == "warn"]
    assert [s["cause"] for s in warned] == [explain.TLS_SELF_SIGNED.cause] * 4
    logins = [s for s in accepted if s["name"] == "login"]
    assert [s["status"] for s in logins] == ["ok"] * 4


SUBMISSION_MASTER = """\
{address}:{submission} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
{address}:{submissions} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
"""


async def run_with_postfix(
    tmp_path: Path,
    dnsmasq: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra_main: str = "",
    wait: str = "20",
) -> tuple[int, list[dict[str, Any]], list[Path]]:
    """The whole check against Dovecot with Postfix for submission and port 25: (status,
    steps, the files left in alice's Maildir)."""
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("server", [HOST])
    root = private_directory("courriel-check-postfix-")
    submission, submissions, smtp = free_ports(3)
    try:
        with running(
            cert, key, dnsmasq, extra_srv={"submission": submission, "submissions": submissions}
        ) as (d, nameserver):
            master = SUBMISSION_MASTER.format(
                address=d.address, submission=submission, submissions=submissions
            )
            main = f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {d.auth_socket}\n" + extra_main
            async with postfix.start_postfix(
                root,
                address=d.address,
                port=smtp,
                domains=["example.test"],
                users=[ALICE],
                cert=cert,
                key=key,
                hostname=HOST,
                vmail=d.mail,
                extra_main=main,
                extra_master=master,
            ):
                argv = ["--dns", nameserver, "--cafile", str(ca.ca_file)]
                argv += ["--port", f"https=1,smtp={smtp}", "--wait", wait]
                status, steps = await asyncio.to_thread(
                    check_all, argv, PASSWORD + "\n", capsys, monkeypatch
                )
                maildir = d.mail / "example.test" / "alice"
                left = [p for sub in ("new", "cur") for p in (maildir / sub).glob("*")]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return status, steps, left


@pytest.fixture
def need_postfix(request: pytest.FixtureRequest) -> None:
    if not postfix.available():
        report_missing("program 'postfix' (run as root)", request.node.nodeid)


async def test_full_round_trip_against_dovecot_and_postfix(
    tmp_path: Path,
    dnsmasq: str,
    need_dovecot: None,
    need_postfix: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Postfix takes submissions (passwords checked by Dovecot over its auth socket) and
    delivers into the Maildirs Dovecot serves: the whole check passes, round trip included."""
    status, steps, left = await run_with_postfix(tmp_path, dnsmasq, capsys, monkeypatch)
    failed = [(s["section"], s["name"], s["detail"]) for s in steps if s["status"] == "fail"]
    assert failed == [] and status == 0
    names = {s["name"]: s for s in steps if s["section"] == "round trip"}
    arrived = names[f"arrived in {ALICE}'s INBOX"]
    assert arrived["status"] == "ok"
    assert arrived["detail"].startswith("pushed by IDLE after "), arrived  # Dovecot's inotify
    assert any(n.startswith("listed over POP3") for n in names)
    assert names["clean up"]["status"] == "ok"
    assert left == []  # the test message was delivered, then deleted


async def test_accepted_but_never_delivered(
    tmp_path: Path,
    dnsmasq: str,
    need_dovecot: None,
    need_postfix: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Postfix accepts the test message and holds it in its queue (a header_checks HOLD)."""
    checks = tmp_path / "header_checks"
    checks.write_text("/^Subject: courriel check / HOLD held by the test\n")
    status, steps, left = await run_with_postfix(
        tmp_path,
        dnsmasq,
        capsys,
        monkeypatch,
        extra_main=f"header_checks = regexp:{checks}\n",
        wait="1.5",
    )
    assert status == 1
    failed = [(s["name"], s["cause"]) for s in steps if s["status"] == "fail"]
    assert [c for _, c in failed] == [explain.NOT_DELIVERED.cause] * 2
    assert failed[0][0] == f"delivery to {ALICE}"
    assert failed[1][0].startswith(f"listed over POP3 {HOST}:")
    assert explain.NOT_DELIVERED.cause == (
        "The server accepted the message, but it did not arrive in the mailbox before the time "
        "limit."
    )
    assert left == []
