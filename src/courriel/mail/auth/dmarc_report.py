"""DMARC aggregate reports (RFC 7489 §7.2, Appendix C): what is recorded, and the report mail.

Theory of operation
-------------------
Port 25 records one ``Evaluation`` per message whose From domain publishes a DMARC record with
a ``rua=`` (``evaluation_of``): the sending address, the identifiers, the SPF and DKIM results
with their domains, the disposition courriel applied and why it differed from the policy. It is
kept in the store as JSON (``to_json``), so the table does not change when the report grows.

Once a day the reporter (``courriel.queue.dmarc_reports``) turns one policy domain's
evaluations of a period into one report: ``aggregate_xml`` groups identical rows (same source,
identifiers, results and disposition) with a count and writes the Appendix C document;
``report_message`` wraps it gzip-compressed in a message with the subject and file name of
§7.2.1.1. ``destinations`` reads the ``rua=`` URIs with their optional size limits
(``mailto:dmarc@example.org!10m``), and ``needs_verification`` says when the §7.1 record
``<policy-domain>._report._dmarc.<destination-domain>`` must be looked up first.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from courriel.mail.auth.dkim import SignatureResult
from courriel.mail.auth.dmarc import DmarcOutcome, DmarcResult, aligned, organizational_domain
from courriel.mail.auth.spf import SpfOutcome, SpfResult

# RFC 7489 Appendix C enumerations.
DISPOSITIONS = ("none", "quarantine", "reject")
OVERRIDES = (
    "forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other",
)  # fmt: skip
DKIM_RESULTS = ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
SPF_RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One message's DMARC evaluation, as an aggregate report row needs it."""

    received: int  # seconds since the epoch
    policy_domain: str  # where the DMARC record was found
    source_ip: str
    header_from: str
    envelope_from: str  # the MAIL FROM domain (the HELO name for a null sender)
    envelope_to: str  # the recipient domain
    disposition: str  # DISPOSITIONS
    dkim_aligned: bool
    spf_aligned: bool
    reasons: tuple[tuple[str, str], ...] = ()  # (OVERRIDES type, comment)
    dkim: tuple[tuple[str, str, str], ...] = ()  # (domain, selector, result)
    spf: tuple[str, str, str] = ("", "mfrom", "none")  # (domain, scope, result)
    # The record as published: adkim, aspf, p, sp, pct, fo, and the rua URIs.
    published: dict[str, str] = field(default_factory=dict)
    rua: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        d = json.loads(text)
        return cls(
            received=int(d["received"]),
            policy_domain=d["policy_domain"],
            source_ip=d["source_ip"],
            header_from=d["header_from"],
            envelope_from=d["envelope_from"],
            envelope_to=d["envelope_to"],
            disposition=d["disposition"],
            dkim_aligned=bool(d["dkim_aligned"]),
            spf_aligned=bool(d["spf_aligned"]),
            reasons=tuple((str(t), str(c)) for t, c in d["reasons"]),
            dkim=tuple((str(a), str(b), str(c)) for a, b, c in d["dkim"]),
            spf=(str(d["spf"][0]), str(d["spf"][1]), str(d["spf"][2])),
            published={str(k): str(v) for k, v in d["published"].items()},
            rua=tuple(str(u) for u in d["rua"]),
        )


def evaluation_of(
    dmarc: DmarcResult | None,
    spf: SpfResult | None,
    dkim: Sequence[SignatureResult],
    *,
    ip: str,
    helo: str,
    envelope_to: str,
    disposition: str,
    reasons: Sequence[tuple[str, str]],
    now: float,
) -> Evaluation | None:
    """What to record for a report, or None when nobody asked for one (no record, no rua)."""
    if dmarc is None or dmarc.record is None or not dmarc.record.rua:
        return None
    if dmarc.outcome not in (DmarcOutcome.PASS, DmarcOutcome.FAIL):
        return None
    r = dmarc.record
    spf_result = ("", "mfrom", "none")
    spf_ok = False
    if spf is not None:
        scope = "helo" if spf.sender == f"postmaster@{helo}" else "mfrom"
        spf_result = (spf.domain, scope, _spf_value(spf.outcome))
        spf_ok = spf.outcome is SpfOutcome.PASS and aligned(spf.domain, dmarc.from_domain, r.aspf)
    dkim_ok = any(
        s.outcome.value == "pass" and aligned(s.domain, dmarc.from_domain, r.adkim) for s in dkim
    )
    return Evaluation(
        received=int(now),
        policy_domain=dmarc.policy_domain,
        source_ip=ip,
        header_from=dmarc.from_domain,
        envelope_from=spf_result[0] or helo,
        envelope_to=envelope_to,
        disposition=disposition,
        dkim_aligned=dkim_ok,
        spf_aligned=spf_ok,
        reasons=tuple(reasons),
        dkim=tuple((s.domain, s.selector, s.outcome.value) for s in dkim if s.domain),
        spf=spf_result,
        published={
            "adkim": r.adkim,
            "aspf": r.aspf,
            "p": r.p.value,
            "sp": (r.sp or r.p).value,
            "pct": str(r.pct),
            "fo": r.fo,
        },
        rua=r.rua,
    )


def _spf_value(outcome: SpfOutcome) -> str:
    return outcome.value if outcome.value in SPF_RESULTS else "none"


# --- the report -----------------------------------------------------------------------------------


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, name)
    if text is not None:
        element.text = text
    return element


def _row_key(e: Evaluation) -> tuple[object, ...]:
    return (
        e.source_ip, e.disposition, e.dkim_aligned, e.spf_aligned, e.reasons, e.envelope_to,
        e.envelope_from, e.header_from, e.dkim, e.spf,
    )  # fmt: skip


def aggregate_xml(
    *,
    org_name: str,
    email: str,
    report_id: str,
    begin: int,
    end: int,
    policy_domain: str,
    evaluations: Sequence[Evaluation],
) -> bytes:
    """The RFC 7489 Appendix C ``feedback`` document for ``evaluations`` (at least one)."""
    root = ET.Element("feedback")
    _sub(root, "version", "1.0")
    meta = _sub(root, "report_metadata")
    _sub(meta, "org_name", org_name)
    _sub(meta, "email", email)
    _sub(meta, "report_id", report_id)
    dates = _sub(meta, "date_range")
    _sub(dates, "begin", str(begin))
    _sub(dates, "end", str(end))
    published = _sub(root, "policy_published")
    _sub(published, "domain", policy_domain)
    latest = max(evaluations, key=lambda e: e.received).published
    for name in ("adkim", "aspf", "p", "sp", "pct", "fo"):
        _sub(published, name, latest.get(name, ""))
    counts = Counter(_row_key(e) for e in evaluations)
    first: dict[tuple[object, ...], Evaluation] = {}
    for e in evaluations:
        first.setdefault(_row_key(e), e)
    for key, count in counts.items():
        _record(root, first[key], count)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _record(root: ET.Element, e: Evaluation, count: int) -> None:
    record = _sub(root, "record")
    row = _sub(record, "row")
    _sub(row, "source_ip", e.source_ip)
    _sub(row, "count", str(count))
    evaluated = _sub(row, "policy_evaluated")
    _sub(evaluated, "disposition", e.disposition)
    _sub(evaluated, "dkim", "pass" if e.dkim_aligned else "fail")
    _sub(evaluated, "spf", "pass" if e.spf_aligned else "fail")
    for kind, comment in e.reasons:
        reason = _sub(evaluated, "reason")
        _sub(reason, "type", kind)
        if comment:
            _sub(reason, "comment", comment)
    ids = _sub(record, "identifiers")
    if e.envelope_to:
        _sub(ids, "envelope_to", e.envelope_to)
    _sub(ids, "envelope_from", e.envelope_from)
    _sub(ids, "header_from", e.header_from)
    results = _sub(record, "auth_results")
    for domain, selector, result in e.dkim:
        dkim = _sub(results, "dkim")
        _sub(dkim, "domain", domain)
        if selector:
            _sub(dkim, "selector", selector)
        _sub(dkim, "result", result if result in DKIM_RESULTS else "neutral")
    spf = _sub(results, "spf")  # RFC 7489 Appendix C: at least one spf result
    _sub(spf, "domain", e.spf[0] or e.envelope_from)
    _sub(spf, "scope", e.spf[1])
    _sub(spf, "result", e.spf[2])


def filename(receiver: str, policy_domain: str, begin: int, end: int, unique: str = "") -> str:
    """RFC 7489 §7.2.1.1: ``receiver!policy-domain!begin!end[!unique-id].xml.gz``."""
    tail = f"!{unique}" if unique else ""
    return f"{receiver}!{policy_domain}!{begin}!{end}{tail}.xml.gz"


def report_message(
    *,
    sender: str,
    to: Sequence[str],
    receiver: str,
    policy_domain: str,
    report_id: str,
    begin: int,
    end: int,
    xml: bytes,
    now: float,
    unique: str = "",
) -> bytes:
    """The report mail: a short text and the gzip-compressed XML (RFC 7489 §7.2.1.1)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    # §7.2.1.1: the subject names the report domain, the submitter and the report id.
    msg["Subject"] = (
        f"Report Domain: {policy_domain} Submitter: {receiver} Report-ID: <{report_id}>"
    )
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{receiver}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5
    span = (
        f"{datetime.fromtimestamp(begin, UTC):%Y-%m-%d %H:%M} to "
        f"{datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC"
    )
    msg.set_content(
        f"This is a DMARC aggregate report for {policy_domain} from {receiver}, "
        f"covering mail received from {span}.\n"
    )
    msg.add_attachment(
        gzip.compress(xml, mtime=0),
        maintype="application",
        subtype="gzip",
        filename=filename(receiver, policy_domain, begin, end, unique),
    )
    return msg.as_bytes()


@dataclass(frozen=True, slots=True)
class Destination:
    address: str
    limit: int | None  # octets; None: no limit given


def destinations(rua: Iterable[str]) -> list[Destination]:
    """The mailto: addresses of ``rua`` with their size limits (RFC 7489 §6.2, §6.4)."""
    out = []
    for uri in rua:
        if not uri.lower().startswith("mailto:"):
            continue
        address, _, size = uri[len("mailto:") :].partition("!")
        m = re.fullmatch(r"(\d+)([kmgt]?)", size.strip().lower())
        limit = int(m.group(1)) * _UNITS[m.group(2)] if size and m else None
        address = address.strip()
        if "@" in address:
            out.append(Destination(address, limit))
    return out


def needs_verification(policy_domain: str, destination: str) -> str | None:
    """The §7.1 name to look up before sending to ``destination``, or None when it is in the
    policy domain's own organizational domain."""
    rua_domain = destination.rpartition("@")[2].rstrip(".").lower()
    if organizational_domain(rua_domain) == organizational_domain(policy_domain):
        return None
    return f"{policy_domain}._report._dmarc.{rua_domain}"


def verification_ok(records: Sequence[bytes]) -> bool:
    """RFC 7489 §7.1: some record at the name starts with ``v=DMARC1``."""
    return any(re.match(rb"v\s*=\s*DMARC1\s*(;|$)", r) for r in records)


def report_id(policy_domain: str, begin: int, receiver: str) -> str:
    """A unique id, shaped as the subject's msg-id needs it (RFC 7489 §7.2.1.1, RFC 5322)."""
    return f"{begin}.{policy_domain}.{secrets.token_hex(4)}@{receiver}"
