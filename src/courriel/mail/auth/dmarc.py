"""DMARC (RFC 7489): the policy record, the organizational domain, alignment, the disposition.

Theory of operation
-------------------
``parse_record`` reads one ``_dmarc`` TXT record into a ``DmarcRecord`` (table-tested against
the RFC's grammar, §6.3-§6.4); ``find_policy`` looks it up for the RFC5322.From domain and, when
there is none, for its organizational domain (§6.6.3), which ``organizational_domain`` computes
from the Public Suffix List bundled with the ``publicsuffixlist`` package (no fetch at run time).
``evaluate`` is pure: given the record, the SPF result and the DKIM results it decides alignment
(§3.1: strict is equality, relaxed is the same organizational domain), the result, and the
disposition -- the record's ``p`` (or ``sp`` for a subdomain that used its parent's record),
lowered one step when ``pct`` sampled the message out (§6.6.4) -- and writes the one sentence
that says which check failed and why:
"SPF: 203.0.113.9 is not allowed to send for example.org; DKIM: body hash mismatch".

A DNS error while looking for the record is ``temperror``: the caller defers (451), it never
guesses a verdict.
"""

from __future__ import annotations

import enum
import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from courriel.mail.auth.dkim import Outcome, SignatureResult
from courriel.mail.auth.dns import DnsTempError, Resolver
from courriel.mail.auth.spf import SpfOutcome, SpfResult


class Policy(enum.Enum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class DmarcOutcome(enum.Enum):
    """RFC 8601 §2.7 / RFC 7489 §11.2 result values."""

    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DmarcSyntaxError(ValueError):
    """The record is not a usable DMARC record; the message says why."""


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: Policy
    sp: Policy | None = None  # None: subdomains get p
    pct: int = 100
    adkim: str = "r"  # "r" relaxed or "s" strict
    aspf: str = "r"
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str = "0"
    ri: int = 86400


@dataclass(frozen=True, slots=True)
class DmarcResult:
    outcome: DmarcOutcome
    from_domain: str
    policy_domain: str = ""  # where the record was found ("" when none)
    record: DmarcRecord | None = None
    disposition: Policy = Policy.NONE  # what the receiver should do with the message
    sampled_out: bool = False  # pct left this failing message at a lower disposition
    explanation: str = ""


# --- the record -----------------------------------------------------------------------------------

_POLICIES = {p.value: p for p in Policy}
_VERSION = re.compile(r"v\s*=\s*DMARC1\s*(;|$)")


def _tags(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue  # RFC 7489 §6.4: a trailing ";" is allowed
        name, eq, value = part.partition("=")
        if not eq:
            raise DmarcSyntaxError(f"{part.strip()!r} is not a tag=value pair")
        out.append((name.strip().lower(), value.strip()))
    return out


def _uris(value: str) -> tuple[str, ...]:
    uris = tuple(u.strip() for u in value.split(",") if u.strip())
    return tuple(u for u in uris if u.lower().startswith("mailto:"))


def parse_record(text: str) -> DmarcRecord:
    """The record, or ``DmarcSyntaxError`` naming what is wrong (RFC 7489 §6.3, §6.6.3)."""
    tags = _tags(text)
    if not tags or tags[0] != ("v", "DMARC1"):  # §6.4: v=DMARC1 first, exactly so
        raise DmarcSyntaxError("it does not start with v=DMARC1")
    values = dict(tags[1:])  # §6.3: unknown tags are ignored
    rua = _uris(values.get("rua", ""))
    p = _POLICIES.get(values.get("p", "").lower())
    sp_text = values.get("sp")
    sp = None if sp_text is None else _POLICIES.get(sp_text.lower())
    if p is None or (sp_text is not None and sp is None):
        # §6.6.3: with a valid rua, act as p=none; otherwise the record is unusable.
        if not rua:
            raise DmarcSyntaxError(f"p={values.get('p', '')!r} is not none, quarantine or reject")
        p, sp = Policy.NONE, None
    return DmarcRecord(
        p=p,
        sp=sp,
        pct=_int(values.get("pct"), 100, 0, 100),
        adkim=_mode(values.get("adkim")),
        aspf=_mode(values.get("aspf")),
        rua=rua,
        ruf=_uris(values.get("ruf", "")),
        fo=values.get("fo", "0"),
        ri=_int(values.get("ri"), 86400, 0, 2**31 - 1),
    )


def _int(text: str | None, default: int, low: int, high: int) -> int:
    if text is None or not text.isdigit():
        return default  # a malformed optional tag takes its default value
    return min(max(int(text), low), high)


def _mode(text: str | None) -> str:
    return text.lower() if text is not None and text.lower() in ("r", "s") else "r"


# --- organizational domain and alignment ----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package; loading it reads one file


def organizational_domain(domain: str) -> str:
    """The registered domain: public suffix plus one label (RFC 7489 §3.2)."""
    domain = domain.rstrip(".").lower()
    return _psl().privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.rstrip(".").lower(), b.rstrip(".").lower()
    if mode == "s":  # RFC 7489 §3.1.1: strict is an exact match
        return a == b
    return organizational_domain(a) == organizational_domain(b)


# --- lookup and evaluation ------------------------------------------------------------------------


async def find_policy(
    from_domain: str, resolver: Resolver
) -> tuple[str, DmarcRecord] | tuple[str, DmarcSyntaxError] | None:
    """(where, record or why unusable) for ``from_domain``, or None; raises ``DnsTempError``."""
    from_domain = from_domain.rstrip(".").lower()
    org = organizational_domain(from_domain)
    for where in dict.fromkeys((from_domain, org)):  # §6.6.3 steps 1 and 3
        texts = [t.decode("utf-8", "replace") for t in await resolver.txt(f"_dmarc.{where}")]
        # §6.6.3: records that do not start with v=DMARC1 (case-sensitive, §6.4) are discarded.
        records = [t for t in texts if _VERSION.match(t)]
        if len(records) > 1:  # §6.6.3 step 2: more than one record, no DMARC processing
            return None
        if records:
            try:
                return where, parse_record(records[0])
            except DmarcSyntaxError as e:
                return where, e
    return None


def evaluate(
    from_domain: str,
    where: str,
    record: DmarcRecord,
    spf: SpfResult | None,
    dkim: Sequence[SignatureResult],
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    from_domain = from_domain.rstrip(".").lower()
    spf_ok = (
        spf is not None
        and spf.outcome is SpfOutcome.PASS
        and aligned(spf.domain, from_domain, record.aspf)
    )
    dkim_ok = any(
        s.outcome is Outcome.PASS and aligned(s.domain, from_domain, record.adkim) for s in dkim
    )
    if spf_ok or dkim_ok:
        return DmarcResult(DmarcOutcome.PASS, from_domain, where, record)
    policy = record.sp if where != from_domain and record.sp is not None else record.p
    disposition, sampled_out = policy, False
    if record.pct < 100 and sample() * 100 >= record.pct:  # §6.6.4: not selected: one step down
        sampled_out = True
        disposition = Policy.QUARANTINE if policy is Policy.REJECT else Policy.NONE
    return DmarcResult(
        DmarcOutcome.FAIL,
        from_domain,
        where,
        record,
        disposition,
        sampled_out,
        explain(from_domain, spf, dkim),
    )


def explain(from_domain: str, spf: SpfResult | None, dkim: Sequence[SignatureResult]) -> str:
    """Why neither SPF nor DKIM vouches for ``from_domain``, in one sentence."""
    if spf is None:
        spf_text = "not checked"
    elif spf.outcome is SpfOutcome.PASS:
        spf_text = f"passed for {spf.domain}, which is not {from_domain}"
    else:
        spf_text = spf.sentence
    if not dkim:
        dkim_text = "no signature"
    else:
        reasons = []
        for s in dkim:
            if s.outcome is Outcome.PASS:
                reasons.append(f"signed by {s.domain}, not {from_domain}")
            else:
                reasons.append(s.reason)
        dkim_text = ", ".join(dict.fromkeys(reasons))
    return f"SPF: {spf_text}; DKIM: {dkim_text}"


async def check_dmarc(
    from_domain: str,
    spf: SpfResult | None,
    dkim: Sequence[SignatureResult],
    resolver: Resolver,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    try:
        found = await find_policy(from_domain, resolver)
    except DnsTempError as e:
        return DmarcResult(DmarcOutcome.TEMPERROR, from_domain, explanation=f"DMARC: {e}")
    if found is None:
        return DmarcResult(DmarcOutcome.NONE, from_domain)
    where, record = found
    if isinstance(record, DmarcSyntaxError):
        return DmarcResult(
            DmarcOutcome.PERMERROR,
            from_domain,
            where,
            explanation=f"DMARC: the record of {where} is unusable: {record}",
        )
    return evaluate(from_domain, where, record, spf, dkim, sample)
