"""DMARC aggregate reports end to end: port 25's verdict is recorded in the store, and the
reporter sends each finished day once, to the destinations RFC 7489 §7.1 allows, within their
size limits, from one process at a time; a DNS failure postpones, never drops."""

from __future__ import annotations

import asyncio
import gzip
import xml.etree.ElementTree as ET
from email import message_from_bytes
from email.message import Message

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.config import MailAuthConfig
from courriel.mail.auth.dmarc_report import Evaluation
from courriel.mail.auth.inbound import MailAuth
from courriel.queue import dmarc_reports
from courriel.queue.dmarc_reports import DmarcReporter
from courriel.session.smtp_inbound import judge, recorder
from courriel.store.base import Store
from courriel.testing.dns import silent_port
from courriel.testing.mailauth import FORGER_IP, message

DAY = 86400
MIDNIGHT = 1796515200  # 2026-12-06 00:00 UTC
RUA = (
    "mailto:dmarc@example.org",  # the policy domain's own: no check needed
    "mailto:rua@reports.example",  # publishes example.org._report._dmarc.reports.example
    "mailto:rua@refuses.example",  # publishes nothing: not sent there
    "mailto:small@example.org!1k",  # too small for the report
)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, to: str, raw: bytes) -> None:
        self.sent.append((to, raw))


async def record(store: Store, received: int, ip: str = "203.0.113.9") -> None:
    e = Evaluation(
        received=received, policy_domain="example.org", source_ip=ip, header_from="example.org",
        envelope_from="example.org", envelope_to="example.com", disposition="reject",
        dkim_aligned=False, spf_aligned=False, spf=("example.org", "mfrom", "fail"),
        published={"p": "reject", "sp": "reject", "pct": "100"}, rua=RUA,
    )  # fmt: skip
    await store.add_dmarc_evaluation(e.policy_domain, e.received, e.to_json())


def attachment(raw: bytes) -> tuple[str, ET.Element]:
    parts: list[Message] = [p for p in message_from_bytes(raw).walk() if p.get_filename()]
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(parts[0].get_filename()), ET.fromstring(gzip.decompress(payload))  # noqa: S314


async def test_port_25_records_each_verdict(store: Store, resolver: AuthResolver) -> None:
    auth = MailAuth(resolver, "mx.example.com")
    try:
        reply = await judge(
            auth, MailAuthConfig(), ip=FORGER_IP, helo="forger.example",
            mail_from="alice@example.org", message=message(),
            record=recorder(store, ip=FORGER_IP, helo="forger.example", envelope_to="example.com"),
        )  # fmt: skip
    finally:
        auth.close()
    assert getattr(reply, "code", None) == 550
    [row] = await store.dmarc_evaluations("example.org", before=2**40, limit=10)
    e = Evaluation.from_json(row.data)
    assert (e.source_ip, e.disposition, e.header_from, e.envelope_to) == (
        FORGER_IP, "reject", "example.org", "example.com",
    )  # fmt: skip
    assert e.rua == ("mailto:dmarc@example.org",) and e.spf[2] == "fail"


async def test_a_finished_day_is_reported_once(store: Store, resolver: AuthResolver) -> None:
    for ip in ("203.0.113.9", "203.0.113.9", "198.51.100.7"):
        await record(store, MIDNIGHT - DAY + 3600, ip)
    await record(store, MIDNIGHT + 60)  # today's: waits for tomorrow's report
    outbox = Outbox()
    clock = lambda: MIDNIGHT + 7200.0  # noqa: E731
    reporters = [
        DmarcReporter(store, outbox.send, resolver, "mx.example.com", clock=clock, owner=o)
        for o in ("node-1", "node-2")
    ]
    made = await asyncio.gather(*(r.report_due() for r in reporters))
    assert sorted(made) == [0, 1]  # the lease: one node made the report
    assert [to for to, _ in outbox.sent] == ["dmarc@example.org", "rua@reports.example"]
    name, root = attachment(outbox.sent[0][1])
    subject = " ".join(str(message_from_bytes(outbox.sent[0][1])["Subject"]).split())
    rid = root.findtext("report_metadata/report_id")
    assert rid is not None and rid.endswith("@mx.example.com")  # a msg-id (RFC 5322 §3.6.4)
    assert subject == f"Report Domain: example.org Submitter: mx.example.com Report-ID: <{rid}>"
    assert name == f"mx.example.com!example.org!{MIDNIGHT - DAY}!{MIDNIGHT - 1}.xml.gz"
    counts = {r.findtext("row/source_ip"): r.findtext("row/count") for r in root.iter("record")}
    assert counts == {"203.0.113.9": "2", "198.51.100.7": "1"}
    assert await reporters[0].report_due() == 0  # reported rows are gone
    [left] = await store.dmarc_evaluations("example.org", before=2**40, limit=10)
    assert left.received == MIDNIGHT + 60


async def test_no_dns_answer_postpones_the_report(store: Store) -> None:
    await record(store, MIDNIGHT - 3600)
    outbox = Outbox()
    with silent_port() as port:
        resolver = AuthResolver([f"127.0.0.1:{port}"], timeout=0.3)
        reporter = DmarcReporter(
            store, outbox.send, resolver, "mx.example.com", clock=lambda: MIDNIGHT + 1.0
        )
        assert await reporter.report_due() == 0
    assert outbox.sent == []
    assert len(await store.dmarc_evaluations("example.org", before=2**40, limit=10)) == 1


async def test_a_big_day_is_split_into_numbered_reports(
    store: Store, resolver: AuthResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dmarc_reports, "MAX_ROWS", 2)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        await record(store, MIDNIGHT - 3600, ip)
    outbox = Outbox()
    reporter = DmarcReporter(
        store, outbox.send, resolver, "mx.example.com", clock=lambda: MIDNIGHT + 1.0
    )
    assert await reporter.report_due() == 2
    names = [attachment(raw)[0] for to, raw in outbox.sent if to == "dmarc@example.org"]
    base = f"mx.example.com!example.org!{MIDNIGHT - DAY}!{MIDNIGHT - 1}"
    assert names == [f"{base}!1.xml.gz", f"{base}!2.xml.gz"]
    assert await store.dmarc_evaluations("example.org", before=2**40, limit=10) == []
