"""The verdict on a message received on port 25: SPF, DKIM and DMARC combined.

Theory of operation
-------------------
``MailAuth.check_inbound`` is what the SMTP session calls once the message is read, with the
client's IP address, its HELO name, the MAIL FROM address and the message bytes. It

1. removes earlier Authentication-Results fields claiming our host name (RFC 8601 §5);
2. runs SPF for MAIL FROM and for HELO, DKIM on every signature (bounded) and ARC on the
   chain (``courriel.mail.auth.arc``), at once;
3. finds the one RFC5322.From domain and runs DMARC on it;
4. returns a ``Verdict``: the Authentication-Results field to put on top, the message to store
   (without the forged fields), and what to do:

   ========================================  =====================================================
   DMARC fails, disposition reject           REJECT: 550 5.7.1 with the sentence saying why
   DMARC fails, disposition quarantine       JUNK: deliver to the Junk mailbox
   DMARC fails, but SPF or DKIM had no DNS   DEFER: 451 4.7.0 -- it might have passed; ask again
   answer (temperror)
   no answer for the DMARC record            DEFER: 451 4.7.0
   no answer for an ARC key                  DEFER: 451 4.7.0 (the chain's verdict and the
                                             seal we would add when forwarding depend on it)
   more than one From address                REJECT: 550 5.7.1 (RFC 5322 §3.6 allows one; a
                                             second one is how DMARC is dodged)
   anything else                             ACCEPT
   ========================================  =====================================================

A DNS timeout can therefore only ever give 451, never a wrong accept-as-pass or a reject.

When DMARC fails but the ARC chain passes and one of ``trusted_arc_sealers`` recorded
``dmarc=pass`` (RFC 8617 §7.2: local policy), the verdict keeps its REJECT or JUNK action and
names the sealer in ``arc_override``; the recipient domain's policy decides whether to honour it
(``courriel.session.smtp_inbound``).
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import getaddresses

from courriel.mail.auth.arc import ArcOutcome, ArcResult, ArcVerifier
from courriel.mail.auth.dkim import DkimVerifier, Outcome, SignatureResult
from courriel.mail.auth.dmarc import DmarcOutcome, DmarcResult, Policy, check_dmarc
from courriel.mail.auth.dns import Resolver
from courriel.mail.auth.results import Clause, authentication_results, strip_ours
from courriel.mail.auth.spf import SpfChecker, SpfOutcome, SpfResult


class Action(enum.Enum):
    ACCEPT = "accept"
    JUNK = "junk"  # deliver into the recipient's Junk mailbox
    REJECT = "reject"  # 550 5.7.1
    DEFER = "defer"  # 451 4.7.0


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    header: bytes  # the Authentication-Results field to prepend, CRLF-terminated
    message: bytes  # the message without forged Authentication-Results fields
    code: int = 250
    enhanced: str = "2.0.0"
    text: str = ""  # the sentence for the reply (and the log)
    spf: SpfResult | None = None
    helo: SpfResult | None = None
    dkim: tuple[SignatureResult, ...] = field(default_factory=tuple)
    dmarc: DmarcResult | None = None
    arc: ArcResult = field(default_factory=lambda: ArcResult(ArcOutcome.NONE))
    arc_override: str = ""  # the trusted sealer vouching dmarc=pass when DMARC failed

    @property
    def results(self) -> bytes:
        """The Authentication-Results payload (authserv-id and clauses), for an ARC seal."""
        return self.header.partition(b":")[2].strip()


def from_domains(message: bytes) -> list[str]:
    """The domains of the From field(s) of the header, one per address, lower-case."""
    end = message.find(b"\r\n\r\n")
    head = (message if end < 0 else message[:end]).decode("utf-8", "replace")
    values: list[str] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if values and values[-1] is not None:
                values[-1] += line
            continue
        name, colon, value = line.partition(":")
        values.append(value if colon and name.strip().lower() == "from" else None)  # type: ignore[arg-type]
    froms = [v for v in values if v is not None]
    out = []
    for _display, addr in getaddresses(froms):
        out.append(addr.rpartition("@")[2].strip().rstrip(".").lower())
    return out


class MailAuth:
    """The inbound checks of one server: its resolver, host name and worker limits."""

    def __init__(
        self,
        resolver: Resolver,
        hostname: str,
        *,
        sample: Callable[[], float] = random.random,
        max_signatures: int = 10,
        trusted_arc_sealers: Sequence[str] = (),
    ) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self._spf = SpfChecker(resolver)
        self._dkim = DkimVerifier(resolver, max_signatures=max_signatures)
        self._arc = ArcVerifier(resolver)
        self._trusted = tuple(trusted_arc_sealers)
        self._sample = sample

    def close(self) -> None:
        self._spf.close()

    async def check_inbound(self, *, ip: str, helo: str, mail_from: str, message: bytes) -> Verdict:
        message = strip_ours(message, self.hostname)
        spf, helo_result, dkim, arc = await asyncio.gather(
            self._spf.check_mail_from(ip, mail_from, helo),
            self._spf.check_helo(ip, helo),
            self._dkim.verify(message),
            self._arc.verify(message),
        )
        domains = from_domains(message)
        dmarc = None
        if len(set(domains)) == 1 and domains[0]:
            dmarc = await check_dmarc(domains[0], spf, dkim, self.resolver, self._sample)
        clauses = _clauses(spf, helo_result, dkim, dmarc, mail_from)
        clauses.insert(len(clauses) - (dmarc is not None), _arc_clause(arc, ip))  # DMARC last
        header = authentication_results(self.hostname, clauses)
        base = Verdict(
            Action.ACCEPT,
            header,
            message,
            spf=spf,
            helo=helo_result,
            dkim=tuple(dkim),
            dmarc=dmarc,
            arc=arc,
            arc_override=arc.trusted_override(self._trusted) or "",
        )
        if len(domains) > 1:
            text = f"the message has {len(domains)} From addresses; RFC 5322 §3.6 allows one"
            return _refuse(base, Action.REJECT, text)
        return _decide(base)


def _refuse(v: Verdict, action: Action, text: str) -> Verdict:
    code, enhanced = (550, "5.7.1") if action is Action.REJECT else (451, "4.7.0")
    return replace(v, action=action, code=code, enhanced=enhanced, text=text)


def _decide(v: Verdict) -> Verdict:
    dmarc = v.dmarc
    if v.arc.outcome is ArcOutcome.TEMPERROR:
        return _refuse(
            v, Action.DEFER, f"DNS did not answer; try again later (ARC: {v.arc.reason})"
        )
    if dmarc is None or dmarc.outcome in (
        DmarcOutcome.PASS,
        DmarcOutcome.NONE,
        DmarcOutcome.PERMERROR,  # RFC 7489 §6.6.3: an unusable record means no DMARC processing
    ):
        return v
    if dmarc.outcome is DmarcOutcome.TEMPERROR:
        return _refuse(v, Action.DEFER, dmarc.explanation)
    # DMARC failed. If a check had no DNS answer it might have passed: ask again later.
    unsure = (v.spf is not None and v.spf.outcome is SpfOutcome.TEMPERROR) or any(
        s.outcome is Outcome.TEMPERROR for s in v.dkim
    )
    if unsure and dmarc.disposition is not Policy.NONE:
        text = f"DNS did not answer; try again later ({dmarc.explanation})"
        return _refuse(v, Action.DEFER, text)
    if dmarc.disposition is Policy.REJECT:  # RFC 7489 §6.6.4, §10.3: 550 5.7.1
        text = f"rejected by the DMARC policy of {dmarc.policy_domain}: {dmarc.explanation}"
        return _refuse(v, Action.REJECT, text)
    if dmarc.disposition is Policy.QUARANTINE:
        return replace(v, action=Action.JUNK, text=dmarc.explanation)
    return replace(v, text=dmarc.explanation)


def _arc_clause(arc: ArcResult, ip: str) -> Clause:
    # RFC 8617 §10.1: arc=pass|fail|none with smtp.remote-ip (temperror is never stored: the
    # message is deferred).
    return Clause("arc", arc.outcome.value, arc.reason, (("smtp.remote-ip", ip),))


def _clauses(
    spf: SpfResult,
    helo: SpfResult,
    dkim: list[SignatureResult],
    dmarc: DmarcResult | None,
    mail_from: str,
) -> list[Clause]:
    def spf_clause(r: SpfResult, prop: str, value: str) -> Clause:
        reason = "" if r.outcome is SpfOutcome.PASS else r.sentence
        return Clause("spf", r.outcome.value, reason, ((prop, value),))

    out = [spf_clause(spf, "smtp.mailfrom", mail_from or spf.sender)]
    out.append(spf_clause(helo, "smtp.helo", helo.domain))
    for s in dkim:
        props = (
            ("header.d", s.domain),
            ("header.s", s.selector),
            ("header.a", s.algorithm),
            ("header.b", s.b_prefix),
        )
        out.append(Clause("dkim", s.outcome.value, s.reason, props))
    if not dkim:
        out.append(Clause("dkim", "none"))
    if dmarc is not None:
        reason = dmarc.explanation if dmarc.outcome is not DmarcOutcome.PASS else ""
        # RFC 7489 §11.2: header.from is the property DMARC registers.
        out.append(
            Clause("dmarc", dmarc.outcome.value, reason, (("header.from", dmarc.from_domain),))
        )
    return out
