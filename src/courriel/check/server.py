"""``courriel check --server``: this courriel host as the world sees it, as a data structure.

Theory of operation
-------------------
``report(cfg, store)`` returns a ``report.Report`` and prints nothing, so the command line and
the web admin's status page render the same findings. It checks:

* **DNS**, for every hosted domain: the records ``courriel dns`` says must be published
  (``admin_dkim.dns_records`` and ``dnsrecords.check``, the very code of ``courriel dns --check``)
  and forward-confirmed reverse DNS of the host name (``dnsrecords.check_reverse``); each
  missing or wrong record gets the explanation of its kind (SPF, DKIM, ...);
* the **certificate**: readable, not expired, not expiring within 14 days, naming the host
  name, and whether it is self-signed;
* each enabled **listener** answers a TCP connect at the place its configuration says (the
  automatic fallback port too, ``net.ports.candidates``);
* **not an open relay**: port 25, no login, a recipient in an outside domain must be refused
  at RCPT (RFC 5321 §3.6.1 leaves relaying to policy; RFC 5321 §7.1 warns of open relays);
* the **queue**'s oldest entry, and the **disk** space left where the data directory lives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import smtplib
import socket
import time
from collections.abc import Sequence

from courriel import admin_dkim, dnsrecords
from courriel.auth_resolver import AuthResolver
from courriel.check import explain
from courriel.check.explain import Explanation
from courriel.check.protocols import LOCAL_NAME
from courriel.check.report import Progress, Report
from courriel.check.tls import EXPIRY_WARNING
from courriel.config import Config
from courriel.net import ports
from courriel.net.tls import TLSError, certificate_info
from courriel.store.base import Store

QUEUE_AGE_WARNING = 3600.0  # seconds
DISK_FREE_FAILURE = 0.02  # fraction of the disk
DISK_FREE_WARNING = 0.10
RELAY_PROBE_RECIPIENT = "courriel-check@relay-test.example.com"  # RFC 2606: never a real mailbox
RELAY_PROBE_SENDER = "courriel-check@example.org"


async def report(
    cfg: Config,
    store: Store,
    *,
    nameservers: Sequence[str] | None = None,
    step_seconds: float = 10.0,
    progress: Progress | None = None,
) -> Report:
    out = Report(f"courriel check --server ({cfg.hostname})")
    if progress is not None:
        out.progress = progress
    resolver = AuthResolver(
        nameservers if nameservers is not None else cfg.dns.nameservers,
        timeout=min(step_seconds, cfg.dns.timeout_seconds),
    )
    # The blocking parts (files, sockets, the file system's free space) run in threads, so the
    # web admin's event loop keeps serving while its status page runs this.
    await _dns(out, cfg, store, resolver)
    await asyncio.to_thread(_certificate, out, cfg)
    await asyncio.to_thread(_listeners, out, cfg, step_seconds)
    await asyncio.to_thread(_open_relay, out, cfg, step_seconds)
    await _queue(out, store)
    await asyncio.to_thread(_disk, out, cfg)
    return out


# --- DNS ------------------------------------------------------------------------------------------


def dns_explanation(record: dnsrecords.Record) -> Explanation:
    """Which kind of record ``record`` is, as the person must hear it."""
    name, value = record.name, record.value
    if record.type == "MX":
        return explain.DNS_MX
    if record.type == "TXT" and value.startswith("v=spf1"):
        return explain.DNS_SPF
    if "._domainkey." in name:
        return explain.DNS_DKIM
    if name.startswith("_dmarc."):
        return explain.DNS_DMARC
    if name.startswith(("_mta-sts.", "mta-sts.")):
        return explain.DNS_MTA_STS
    if name.startswith("_smtp._tls."):
        return explain.DNS_TLS_RPT
    return explain.DNS_CLIENT_SETUP


async def _dns(out: Report, cfg: Config, store: Store, resolver: AuthResolver) -> None:
    for domain in await store.list_domains():
        section = f"DNS of {domain.name}"
        start = time.monotonic()
        records = await admin_dkim.dns_records(cfg, store, domain.name)
        findings = await dnsrecords.check(records, resolver)
        seconds = time.monotonic() - start
        for f in findings:
            name = f"{f.record.type} {f.record.name}"
            if f.status is dnsrecords.Status.OK:
                out.ok(section, name, dnsrecords.zone_value(f.record), seconds)
            elif f.status is dnsrecords.Status.UNKNOWN:
                out.fail(section, name, explain.DNS_NO_ANSWER, f.advice, seconds)
            else:
                why = dns_explanation(f.record)
                out.fail(section, name, why, f"{f.status.value}: {f.advice}", seconds)
    section = f"reverse DNS of {cfg.hostname}"
    start = time.monotonic()
    problems = await dnsrecords.check_reverse(cfg.hostname, resolver)
    seconds = time.monotonic() - start
    for status, problem in problems:
        why = explain.DNS_NO_ANSWER if status is dnsrecords.Status.UNKNOWN else explain.DNS_PTR
        out.fail(section, "PTR", why, problem, seconds)
    if not problems:
        out.ok(section, "PTR", f"{cfg.hostname} (forward-confirmed reverse DNS)", seconds)


# --- certificate ----------------------------------------------------------------------------------


def _certificate(out: Report, cfg: Config, now: dt.datetime | None = None) -> None:
    section = "certificate"
    if cfg.tls.cert:
        cert, key = cfg.resolve(cfg.tls.cert), cfg.resolve(cfg.tls.key)
    else:
        cert, key = cfg.data_dir / "tls" / "cert.pem", cfg.data_dir / "tls" / "key.pem"
    try:
        info = certificate_info(cert, key)
    except TLSError as e:
        out.fail(section, "certificate", explain.CERT_UNREADABLE, str(e))
        return
    now = now or dt.datetime.now(dt.UTC)
    detail = f"{cert}: {', '.join(info.names) or info.subject}, expires {info.not_after:%Y-%m-%d}"
    if info.not_after <= now:
        out.fail(section, "expiry", explain.TLS_EXPIRED, detail)
    elif info.not_after - now < EXPIRY_WARNING:
        out.warn(section, "expiry", explain.TLS_EXPIRES_SOON, detail)
    else:
        out.ok(section, "expiry", detail)
    if not _covers(info.names, cfg.hostname):
        out.fail(section, "names", explain.TLS_NAME_MISMATCH, f"{cfg.hostname} not in {detail}")
    else:
        out.ok(section, "names", f"covers {cfg.hostname}")
    if info.self_signed:
        out.warn(section, "issuer", explain.TLS_SELF_SIGNED, f"SHA-256 {info.sha256}")
    else:
        out.ok(section, "issuer", "issued by a certificate authority")


def _covers(names: Sequence[str], hostname: str) -> bool:
    host = hostname.lower().rstrip(".")
    for name in names:
        n = name.lower()
        if n == host:
            return True
        # RFC 6125 §6.4.3: a wildcard stands for exactly one left-most label.
        if n.startswith("*.") and host.partition(".")[2] == n[2:]:
            return True
    return False


# --- listeners and relay --------------------------------------------------------------------------


def _connect(lc_address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((lc_address or ports.FALLBACK_ADDRESS, port), timeout=timeout)


def _listeners(out: Report, cfg: Config, timeout: float) -> None:
    section = "listeners"
    for lc in cfg.listeners:
        if not lc.enabled:
            continue
        error: OSError | None = None
        for address, port in ports.candidates(lc):
            shown = ports.display(address or ports.FALLBACK_ADDRESS, port)
            start = time.monotonic()
            try:
                _connect(address, port, timeout).close()
            except OSError as e:
                error = e
                continue
            out.ok(section, lc.name, f"{shown} answered", time.monotonic() - start)
            break
        else:
            assert error is not None
            why = explain.from_os_error(error, lc.standard_port)
            out.fail(section, lc.name, why, f"{lc.name}: {error.strerror or error}")


def _smtp_place(cfg: Config, timeout: float) -> tuple[str, int] | None:
    for lc in cfg.listeners:
        if lc.name == "smtp" and lc.enabled:
            for address, port in ports.candidates(lc):
                try:
                    _connect(address, port, timeout).close()
                except OSError:
                    continue
                return address or ports.FALLBACK_ADDRESS, port
    return None


def _open_relay(out: Report, cfg: Config, timeout: float) -> None:
    section = "open relay"
    place = _smtp_place(cfg, timeout)
    if place is None:
        out.skip(section, "relay test", "no smtp listener answers")
        return
    start = time.monotonic()
    try:
        with smtplib.SMTP(place[0], place[1], local_hostname=LOCAL_NAME, timeout=timeout) as smtp:
            smtp.ehlo()
            code, reply = smtp.mail(RELAY_PROBE_SENDER)
            stage = "MAIL FROM"
            if code == 250:
                code, reply = smtp.rcpt(RELAY_PROBE_RECIPIENT)
                stage = "RCPT TO"
            smtp.rset()
    except (smtplib.SMTPException, OSError) as e:
        why = explain.from_os_error(e, 25) if isinstance(e, OSError) else explain.CLOSED_EARLY
        out.fail(section, "relay test", why, str(e), time.monotonic() - start)
        return
    answer = reply.decode("utf-8", "replace")
    text = f"{stage}:<{RELAY_PROBE_RECIPIENT}> without login: {code} {answer}"
    if code // 100 == 2:
        out.fail(section, "relay test", explain.OPEN_RELAY, text, time.monotonic() - start)
    else:
        out.ok(section, "relay test", f"refused: {text}", time.monotonic() - start)


# --- queue and disk -------------------------------------------------------------------------------


async def _queue(out: Report, store: Store, now: float | None = None) -> None:
    entries = await store.queue.list_entries()
    if not entries:
        out.ok("queue", "oldest entry", "the outbound queue is empty")
        return
    oldest = min(entries, key=lambda e: e.created)
    age = (now or time.time()) - oldest.created
    detail = f"{len(entries)} message(s); the oldest, {oldest.id}, waits for {age / 60:.0f} minutes"
    if age > QUEUE_AGE_WARNING:
        out.warn("queue", "oldest entry", explain.QUEUE_STUCK, detail)
    else:
        out.ok("queue", "oldest entry", detail)


def _disk(out: Report, cfg: Config) -> None:
    usage = shutil.disk_usage(cfg.data_dir)
    free = usage.free / usage.total if usage.total else 0.0
    gib = 2**30
    detail = (
        f"{cfg.data_dir}: {usage.free / gib:.1f} GiB free of {usage.total / gib:.1f} GiB "
        f"({free:.0%})"
    )
    if free < DISK_FREE_FAILURE:
        out.fail("disk", "free space", explain.DISK_LOW, detail)
    elif free < DISK_FREE_WARNING:
        out.warn("disk", "free space", explain.DISK_LOW, detail)
    else:
        out.ok("disk", "free space", detail)
