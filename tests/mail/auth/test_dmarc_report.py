"""DMARC aggregate reports (RFC 7489 §7.2): the recorded evaluation, the Appendix C document
(checked against the schema's structure, written out below), the report mail and its file
name, ``rua`` size limits and the §7.1 external-destination rule."""

from __future__ import annotations

import gzip
import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from email import message_from_bytes
from email.message import Message
from typing import TypeVar

import pytest

from courriel.mail.auth.dkim import Outcome, SignatureResult
from courriel.mail.auth.dmarc import DmarcOutcome, DmarcResult, Policy, parse_record
from courriel.mail.auth.dmarc_report import (
    DISPOSITIONS,
    DKIM_RESULTS,
    OVERRIDES,
    SPF_RESULTS,
    Destination,
    Evaluation,
    aggregate_xml,
    destinations,
    evaluation_of,
    filename,
    needs_verification,
    report_message,
    verification_ok,
)
from courriel.mail.auth.spf import SpfOutcome, SpfResult

# RFC 7489 Appendix C, the parts a report must get right: each element's children in order as
# (name, min, max) -- None: unbounded -- or the type of its text.
T = TypeVar("T")
INT, TEXT, IP = "integer", "string", "ip"
CHILDREN: dict[str, list[tuple[str, int, int | None]]] = {
    "feedback": [("version", 0, 1), ("report_metadata", 1, 1), ("policy_published", 1, 1),
                 ("record", 1, None)],
    "report_metadata": [("org_name", 1, 1), ("email", 1, 1), ("extra_contact_info", 0, 1),
                        ("report_id", 1, 1), ("date_range", 1, 1), ("error", 0, None)],
    "date_range": [("begin", 1, 1), ("end", 1, 1)],
    "policy_published": [("domain", 1, 1), ("adkim", 0, 1), ("aspf", 0, 1), ("p", 1, 1),
                         ("sp", 1, 1), ("pct", 1, 1), ("fo", 0, 1)],
    "record": [("row", 1, 1), ("identifiers", 1, 1), ("auth_results", 1, 1)],
    "row": [("source_ip", 1, 1), ("count", 1, 1), ("policy_evaluated", 1, 1)],
    "policy_evaluated": [("disposition", 1, 1), ("dkim", 1, 1), ("spf", 1, 1),
                         ("reason", 0, None)],
    "reason": [("type", 1, 1), ("comment", 0, 1)],
    "identifiers": [("envelope_to", 0, 1), ("envelope_from", 1, 1), ("header_from", 1, 1)],
    "auth_results": [("dkim", 0, None), ("spf", 1, None)],
    "auth_results/dkim": [("domain", 1, 1), ("selector", 0, 1), ("result", 1, 1),
                          ("human_result", 0, 1)],
    "auth_results/spf": [("domain", 1, 1), ("scope", 1, 1), ("result", 1, 1),
                         ("human_result", 0, 1)],
}  # fmt: skip
TEXTS: dict[str, str | tuple[str, ...]] = {
    "version": r"\d+(\.\d+)?", "org_name": TEXT, "email": TEXT, "report_id": TEXT,
    "begin": INT, "end": INT, "domain": TEXT, "adkim": ("r", "s"), "aspf": ("r", "s"),
    "p": ("none", "quarantine", "reject"), "sp": ("none", "quarantine", "reject"), "pct": INT,
    "fo": TEXT, "source_ip": IP, "count": INT, "disposition": DISPOSITIONS,
    "policy_evaluated/dkim": ("pass", "fail"), "policy_evaluated/spf": ("pass", "fail"),
    "type": OVERRIDES, "comment": TEXT, "envelope_to": TEXT, "envelope_from": TEXT,
    "header_from": TEXT, "selector": TEXT, "auth_results/dkim/result": DKIM_RESULTS,
    "scope": ("helo", "mfrom"), "auth_results/spf/result": SPF_RESULTS,
}  # fmt: skip


def _lookup(table: dict[str, T], path: list[str]) -> T | None:
    """The entry for the longest tail of ``path`` (``auth_results/dkim/result``, ``dkim``)."""
    for n in (3, 2, 1):
        key = "/".join(path[-n:])
        if len(path) >= n and key in table:
            return table[key]
    return None


def valid(element: ET.Element, path: tuple[str, ...] = ()) -> None:
    """Asserts that ``element`` follows the schema above, recursively."""
    where = [*path, element.tag]
    shape = _lookup(CHILDREN, where)
    if shape is None:
        assert len(element) == 0, f"{'/'.join(where)} has children"
        kind = _lookup(TEXTS, where)
        assert kind is not None, f"{'/'.join(where)} is not in the schema"
        text = element.text or ""
        if isinstance(kind, tuple):
            assert text in kind, (where, text)
        elif kind == INT:
            assert text.isdigit(), (where, text)
        elif kind == IP:
            assert ipaddress.ip_address(text), (where, text)
        elif kind != TEXT:
            assert re.fullmatch(kind, text), (where, text)
        return
    tags = [child.tag for child in element]
    position = 0
    for child_name, low, high in shape:  # a sequence: each name in its place, counted
        count = 0
        while position < len(tags) and tags[position] == child_name:
            count, position = count + 1, position + 1
        assert count >= low, f"{'/'.join(where)}: {child_name} missing"
        assert high is None or count <= high, f"{'/'.join(where)}: too many {child_name}"
    assert position == len(tags), f"{'/'.join(where)}: unexpected {tags[position:]}"
    for child in element:
        valid(child, tuple(where))


RECORD = parse_record("v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.org!10m")


def dmarc(outcome: DmarcOutcome = DmarcOutcome.FAIL) -> DmarcResult:
    return DmarcResult(outcome, "example.org", "example.org", RECORD, Policy.REJECT)


def spf(outcome: SpfOutcome = SpfOutcome.FAIL, ip: str = "203.0.113.9") -> SpfResult:
    return SpfResult(outcome, "mailfrom", "example.org", "a@example.org", ip, "")


def evaluation(ip: str = "203.0.113.9", disposition: str = "reject", **kw: object) -> Evaluation:
    e = evaluation_of(
        dmarc(),
        spf(ip=ip),
        [SignatureResult("example.org", "c202612r", "rsa-sha256", Outcome.FAIL, "body hash")],
        ip=ip,
        helo="h.example",
        envelope_to="example.com",
        disposition=disposition,
        reasons=(),
        now=1796515200 + 3600,
    )
    assert e is not None
    return replace(e, **kw)  # type: ignore[arg-type]


def test_an_evaluation_records_what_the_report_needs() -> None:
    e = evaluation()
    assert (e.policy_domain, e.header_from, e.envelope_from, e.envelope_to) == (
        "example.org",
        "example.org",
        "example.org",
        "example.com",
    )
    assert (e.dkim_aligned, e.spf_aligned, e.disposition) == (False, False, "reject")
    assert e.dkim == (("example.org", "c202612r", "fail"),)
    assert e.spf == ("example.org", "mfrom", "fail")
    assert e.published == {
        "adkim": "r", "aspf": "r", "p": "reject", "sp": "quarantine", "pct": "100", "fo": "0",
    }  # fmt: skip
    assert Evaluation.from_json(e.to_json()) == e
    # Nobody asked for reports: nothing to record.
    no_rua = DmarcResult(
        DmarcOutcome.FAIL, "x.example", "x.example", parse_record("v=DMARC1; p=none")
    )
    assert evaluation_of(
        no_rua, None, [], ip="1.2.3.4", helo="h", envelope_to="", disposition="none",
        reasons=(), now=0,
    ) is None  # fmt: skip


def test_the_report_follows_the_appendix_c_schema() -> None:
    rows = [
        evaluation(),
        evaluation(),
        evaluation("2001:db8::1", "quarantine", reasons=(("local_policy", "domain policy"),)),
        evaluation("192.0.2.10", "none", spf_aligned=True, spf=("example.org", "mfrom", "pass")),
    ]
    xml = aggregate_xml(
        org_name="mx.example.com",
        email="postmaster@mx.example.com",
        report_id="r1",
        begin=1796515200,
        end=1796601599,
        policy_domain="example.org",
        evaluations=rows,
    )
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(xml)  # noqa: S314 - our own document
    valid(root)
    records = root.findall("record")
    assert [(r.findtext("row/source_ip"), r.findtext("row/count")) for r in records] == [
        ("203.0.113.9", "2"),  # identical rows are counted, not repeated
        ("2001:db8::1", "1"),
        ("192.0.2.10", "1"),
    ]
    assert records[1].findtext("row/policy_evaluated/reason/type") == "local_policy"
    assert records[2].findtext("row/policy_evaluated/spf") == "pass"
    assert root.findtext("policy_published/sp") == "quarantine"
    assert root.findtext("report_metadata/date_range/end") == "1796601599"


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b"<disposition>reject", b"<disposition>refuse"),
        (b"<result>fail</result></dkim>", b"<result>broken</result></dkim>"),
        (b"<scope>mfrom", b"<scope>from"),
        (b"<count>2", b"<count>two"),
        (b"<policy_published>", b"<policy_published><bogus/>"),
        (b"</header_from>", b"</header_from><envelope_to>x</envelope_to>"),
    ],
)
def test_the_schema_check_catches_mistakes(good: bytes, bad: bytes) -> None:
    xml = aggregate_xml(
        org_name="o", email="e", report_id="r", begin=0, end=1, policy_domain="example.org",
        evaluations=[evaluation(), evaluation()],
    )  # fmt: skip
    valid(ET.fromstring(xml))  # noqa: S314
    assert good in xml
    with pytest.raises(AssertionError):
        valid(ET.fromstring(xml.replace(good, bad, 1)))  # noqa: S314


def test_the_report_mail() -> None:
    xml = b"<?xml version='1.0'?><feedback/>"
    raw = report_message(
        sender="MAILER-DAEMON@mx.example.com", to=["dmarc@example.org"], receiver="mx.example.com",
        policy_domain="example.org", report_id="r1", begin=1796515200, end=1796601599, xml=xml,
        now=1796605000,
    )  # fmt: skip
    msg = message_from_bytes(raw)
    # RFC 7489 §7.2.1.1: the subject and the file name say who reports on whom, and when.
    assert msg["Subject"] == "Report Domain: example.org Submitter: mx.example.com Report-ID: <r1>"
    parts: list[Message] = [p for p in msg.walk() if p.get_filename()]
    assert [p.get_filename() for p in parts] == [
        "mx.example.com!example.org!1796515200!1796601599.xml.gz"
    ]
    assert parts[0].get_content_type() == "application/gzip"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes) and gzip.decompress(payload) == xml
    assert filename("r", "d", 1, 2) == "r!d!1!2.xml.gz"
    assert filename("r", "d", 1, 2, "3") == "r!d!1!2!3.xml.gz"


def test_destinations_and_their_limits() -> None:
    uris = ["mailto:a@example.org!10m", "mailto:b@example.net", "https://x", "mailto:nobody"]
    assert destinations(uris) == [
        Destination("a@example.org", 10 * 1024 * 1024),
        Destination("b@example.net", None),
    ]  # fmt: skip
    assert destinations(["mailto:a@example.org!2k"])[0].limit == 2048


def test_external_destinations_need_the_report_record() -> None:
    assert needs_verification("example.org", "dmarc@reports.example.org") is None
    assert needs_verification("mail.example.org", "dmarc@example.org") is None
    name = needs_verification("example.org", "rua@thirdparty.example")
    assert name == "example.org._report._dmarc.thirdparty.example"  # RFC 7489 §7.1
    assert verification_ok([b"v=DMARC1"]) and verification_ok([b"x", b"v=DMARC1;"])
    assert not verification_ok([]) and not verification_ok([b"v=spf1 -all"])
