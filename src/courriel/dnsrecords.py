"""The DNS records a hosted domain must publish, and a check of what DNS really says.

Theory of operation
-------------------
``records_for`` is pure: from the domain, our host name, the domain's DKIM keys and the enabled
listeners it lists every record, each with a sentence saying what it is for:

* MX to our host; SPF for the domain (``mx``) and for the host name itself (the HELO identity,
  RFC 7208 §2.3); one DKIM key record per published selector; DMARC ``p=reject`` (every message
  we send is DKIM-signed for its From domain, so aligned mail always passes);
* MTA-STS (RFC 8461): the ``_mta-sts`` TXT record whose ``id`` is a digest of the policy text,
  so it changes exactly when the policy does, and the ``mta-sts`` host that serves the policy;
  the policy says ``mode: testing`` while courriel has only its self-signed certificate, which
  senders enforcing MTA-STS would refuse;
* TLS-RPT (RFC 8460); SRV records for mail clients (RFC 6186, implicit TLS preferred as RFC 8314
  §5.1 asks); ``autoconfig`` and ``autodiscover`` names pointing at our host.

``check`` resolves each record and says, per record, OK, MISSING or WRONG with what to change,
and checks that our host name's addresses point back to it (forward-confirmed reverse DNS), which
many receivers require of a sending host. Answers are compared as DNS presents them: names
lower-case without the trailing dot, TXT strings joined.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from courriel.config import ListenerConfig, MtaStsConfig
from courriel.mail.auth.dmarc import DmarcSyntaxError, parse_record
from courriel.mail.auth.dns import DnsTempError

DEFAULT_MTA_STS = MtaStsConfig()
_SRV = {  # listener -> (service, priority): implicit TLS first (RFC 8314 §5.1)
    "submissions": ("_submissions._tcp", 0),
    "submission": ("_submission._tcp", 10),
    "imaps": ("_imaps._tcp", 0),
    "imap": ("_imap._tcp", 10),
    "pop3s": ("_pop3s._tcp", 0),
    "pop3": ("_pop3._tcp", 10),
    "sieve": ("_sieve._tcp", 0),  # RFC 5804 §1.8
}


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # without the trailing dot
    type: str  # MX, TXT, CNAME, SRV
    value: str  # presentation form; TXT unquoted, names without the trailing dot
    purpose: str


def mta_sts_policy(
    hostname: str, self_signed: bool, settings: MtaStsConfig = DEFAULT_MTA_STS
) -> str:
    """The policy text served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.2).

    ``courriel.web.mtasts`` serves exactly this text and ``records_for`` digests it, so the
    ``_mta-sts`` id changes exactly when the served policy does.
    """
    mode = settings.mode
    if mode == "auto":
        mode = "testing" if self_signed else "enforce"
    lines = ["version: STSv1", f"mode: {mode}"]
    lines += [f"mx: {mx}" for mx in settings.mx or (hostname,)]
    lines.append(f"max_age: {settings.max_age}")
    return "\r\n".join(lines) + "\r\n"  # RFC 8461 §3.2: lines end in CRLF (LF is accepted)


def records_for(
    domain: str,
    hostname: str,
    dkim: Sequence[tuple[str, str]],
    listeners: Sequence[ListenerConfig],
    *,
    self_signed: bool,
    mtasts: MtaStsConfig = DEFAULT_MTA_STS,
) -> list[Record]:
    """Every record ``domain`` should publish; ``dkim`` is (name, value) per published key."""
    policy = mta_sts_policy(hostname, self_signed, mtasts)
    sts_id = hashlib.sha256(policy.encode()).hexdigest()[:20]  # RFC 8461 §3.1: 1-32 alnum
    out = [
        Record(domain, "MX", f"10 {hostname}", f"mail for {domain} is delivered to {hostname}"),
        Record(domain, "TXT", "v=spf1 mx -all", "SPF: only the MX hosts send mail for it"),
        Record(hostname, "TXT", "v=spf1 a -all", "SPF for the host name courriel greets with"),
    ]
    out += [Record(n, "TXT", v, "DKIM public key for selector " + n.split(".")[0]) for n, v in dkim]
    out += [
        Record(
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p=reject; rua=mailto:postmaster@{domain}",
            "DMARC: refuse mail that fails SPF and DKIM for this domain; reports to postmaster",
        ),
        Record(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={sts_id}", "MTA-STS policy version"),
        Record(f"mta-sts.{domain}", "CNAME", hostname, "serves the MTA-STS policy over HTTPS"),
        Record(
            f"_smtp._tls.{domain}",
            "TXT",
            f"v=TLSRPTv1; rua=mailto:postmaster@{domain}",
            "TLS-RPT: where senders report TLS failures",
        ),
    ]
    for lc in listeners:
        if lc.enabled and lc.name in _SRV:
            service, priority = _SRV[lc.name]
            port = lc.port or lc.standard_port
            out.append(
                Record(
                    f"{service}.{domain}",
                    "SRV",
                    f"{priority} 1 {port} {hostname}",
                    "Sieve editors find ManageSieve here (RFC 5804 §1.8)"
                    if lc.name == "sieve"
                    else f"mail clients find {lc.name} here (RFC 6186)",
                )
            )
    for name in ("autoconfig", "autodiscover"):
        out.append(Record(f"{name}.{domain}", "CNAME", hostname, "mail client set-up"))
    return out


# --- output forms ---------------------------------------------------------------------------------


def txt_strings(value: str) -> str:
    """A TXT value as quoted strings of at most 255 octets (RFC 1035 §3.3.14)."""
    parts = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def zone_value(r: Record) -> str:
    if r.type == "TXT":
        return txt_strings(r.value)
    if r.type in ("MX", "SRV", "CNAME"):
        return r.value + "."
    return r.value


def zone(records: Sequence[Record], ttl: int = 3600) -> str:
    lines = []
    for r in records:
        lines.append(f"; {r.purpose}")
        lines.append(f"{r.name}.\t{ttl}\tIN\t{r.type}\t{zone_value(r)}")
    return "\n".join(lines) + "\n"


# --- checking -------------------------------------------------------------------------------------


class Lookup(Protocol):
    async def records(self, name: str, rdtype: str) -> list[str]:
        """Answers in presentation form (TXT strings joined, unquoted); [] for none."""


class Status(enum.Enum):
    OK = "OK"
    MISSING = "MISSING"
    WRONG = "WRONG"
    UNKNOWN = "UNKNOWN"  # DNS gave no answer


@dataclass(frozen=True, slots=True)
class Finding:
    record: Record
    status: Status
    advice: str  # "" when OK


def _norm(value: str) -> str:
    return " ".join(value.split()).rstrip(".").lower()


def _txt_kind(value: str) -> str:
    return value.split(";", 1)[0].split(" ", 1)[0].strip().lower()


def judge(r: Record, found: list[str]) -> Finding:
    """Compares what DNS holds at ``r.name`` with ``r``."""
    if r.type == "TXT":
        kind = _txt_kind(r.value)
        found = [f for f in found if _txt_kind(f) == kind]  # other TXT records are not ours
    if not found:
        return Finding(r, Status.MISSING, f"publish {r.type} {zone_value(r)} at {r.name}")
    if any(_same(r, f) for f in found):
        return Finding(r, Status.OK, "")
    shown = "; ".join(found)
    return Finding(r, Status.WRONG, f"found {shown!r}; change it to {zone_value(r)}")


def _same(r: Record, found: str) -> bool:
    if r.type == "TXT" and r.name.startswith("_dmarc."):
        try:
            parse_record(found)
        except DmarcSyntaxError:
            return False
        return True  # any valid DMARC policy is the owner's choice
    if r.type == "TXT" and "._domainkey." in r.name:
        return _tag(found, "p") == _tag(r.value, "p")
    return _norm(found) == _norm(r.value)


def _tag(record: str, name: str) -> str:
    for part in record.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return "".join(value.split())
    return ""


async def check(records: Sequence[Record], lookup: Lookup) -> list[Finding]:
    """One finding per record, in order; the questions are asked at once (a dead server costs
    one timeout, not one per record)."""

    async def one(r: Record) -> Finding:
        try:
            found = await lookup.records(r.name, r.type)
        except DnsTempError as e:
            return Finding(r, Status.UNKNOWN, f"no answer from DNS: {e}")
        return judge(r, found)

    return list(await asyncio.gather(*(one(r) for r in records)))


async def check_reverse(hostname: str, lookup: Lookup) -> list[tuple[Status, str]]:
    """What is wrong with the forward-confirmed reverse DNS of ``hostname``; [] when right."""
    try:
        addresses = await lookup.records(hostname, "A") + await lookup.records(hostname, "AAAA")
        if not addresses:
            return [(Status.MISSING, f"{hostname} has no address (A/AAAA record)")]
        problems = []
        for address in addresses:
            names = [_norm(n) for n in await lookup.records(address, "PTR")]
            if _norm(hostname) not in names:
                shown = ", ".join(names) or "nothing"
                problems.append(
                    (
                        Status.WRONG,
                        f"the reverse DNS (PTR) of {address} is {shown}; ask the owner of the "
                        f"address to set it to {hostname}",
                    )
                )
    except DnsTempError as e:
        return [(Status.UNKNOWN, f"no answer from DNS: {e}")]
    return problems
