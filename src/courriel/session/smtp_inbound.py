"""Port 25's verdict on a message: SPF, DKIM and DMARC applied to what the MX delivers.

Theory of operation
-------------------
An MX session (nobody is authenticated on port 25) calls ``judge`` once the whole message is
read and before anything is stored, so the client hears the verdict as the reply to its end
of data. ``judge`` asks the ``Checker`` (``courriel.mail.auth.inbound.MailAuth``) and applies the
``[mailauth]`` policy to its ``Verdict``:

==========  ===========================================================================
REJECT      550 5.7.1 with the verdict's sentence (RFC 7489 §6.6.4); with
            ``reject_on_dmarc_reject = false`` the message goes to Junk instead
DEFER       451 4.7.0: DNS did not answer, and its answer could change the verdict
JUNK        the recipients' Junk mailbox (``quarantine_to_junk``; else INBOX)
ACCEPT      INBOX
==========  ===========================================================================

Each recipient domain may choose otherwise (``DomainPolicy``, ``courriel domain policy``): what
a p=reject failure gets (reject, Junk or INBOX), what a p=quarantine failure gets (Junk or
INBOX), whether a trusted ARC sealer's ``dmarc=pass`` (``Verdict.arc_override``) delivers the
message to INBOX, and which From domains it delivers to INBOX whatever DMARC says
(``allow_from``, a local override for a partner whose forwarder breaks DMARC). One SMTP reply
answers for every recipient, so the message is refused only when every recipient domain refuses
it; a domain that would refuse it while another accepts it gets it in Junk (never dropped).

What is stored is the verdict's message (earlier Authentication-Results fields claiming our
host name removed, RFC 8601 §5) with the new Authentication-Results field on top; the session
puts its trace fields above it. Each refusal and each message sent to Junk is logged with the
reason in words, so an administrator can answer "why did my mail bounce".

A checker that fails (a bug, not a DNS answer) defers the message (451): a wrong verdict is
worse than a retry, and the log line carries the traceback.

Each decision carries the disposition applied and why it differs from the sender's policy
(RFC 7489 §7.2 PolicyOverrideType: ``sampled_out``, ``trusted_forwarder`` for a trusted ARC
seal, ``local_policy`` for a domain's own choice) for the daily aggregate report: ``judge``
hands a refusal to ``record`` at once, and the session records a placement once the message is
stored (a message whose storing failed is retried by its sender, and counted then).
``recorder`` writes the evaluation; a store failure there is logged and never changes the
reply.

``deliver`` stores the message for each local recipient in INBOX or Junk, as the placement says
for the recipient's domain; ``forward_sealed`` puts our ARC set (RFC 8617 §5.1) on the copy
an alias forwards to another domain, sealed for the alias's domain.

``deliver_junk`` stores the message in each recipient's mailbox with the ``\\Junk`` special-use
attribute (RFC 6154), else the one named Junk, else in a new ``Junk`` with the attribute,
subscribed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, assert_never

from courriel.config import MailAuthConfig
from courriel.logs import kv
from courriel.mail.auth.dmarc_report import evaluation_of
from courriel.mail.auth.inbound import Action, Verdict
from courriel.queue.signer import Sealer
from courriel.store.base import (
    AlreadyExists,
    Appended,
    DomainPolicy,
    Mailbox,
    NewMessage,
    NotFound,
    OnDmarcFailure,
    Store,
)
from courriel.wire.smtp import Reply

log = logging.getLogger("courriel.smtp")

JUNK = "Junk"
JUNK_USE = "\\Junk"  # RFC 6154 §2
CHECK_FAILED = Reply(451, "4.7.0", "the message could not be checked; try again later")
# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its code and CRLF.
_LINE = 400
_MAX_LINES = 4
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class Checker(Protocol):
    async def check_inbound(
        self, *, ip: str, helo: str, mail_from: str, message: bytes
    ) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an accepted message goes, and the bytes to store (trace fields not included)."""

    message: bytes
    junk: bool = False  # every recipient's copy goes to Junk
    junk_domains: frozenset[str] = frozenset()  # the copies for these recipient domains do
    verdict: Verdict | None = field(default=None, compare=False)  # what the checks found
    # Why copies go to Junk (the checks' sentence), for the junk score's report.
    why: str = field(default="", compare=False)
    # For the DMARC report: the disposition applied and the PolicyOverride reasons.
    disposition: str = field(default="none", compare=False)
    reasons: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def to_junk(self, domain: str) -> bool:
        return self.junk or domain in self.junk_domains


def refusal(code: int, enhanced: str, text: str) -> Reply:
    """A reply carrying ``text`` in printable ASCII, wrapped to lines SMTP allows."""
    clean = _UNPRINTABLE.sub("?", " ".join(text.split())) or "refused"
    lines = textwrap.wrap(clean, _LINE, break_long_words=True) or [clean]
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], lines[_MAX_LINES - 1][: _LINE - 3] + "..."]
    return Reply(code, enhanced, lines[0], tuple(lines[1:]))


async def judge(
    checker: Checker,
    policy: MailAuthConfig,
    *,
    ip: str,
    helo: str,
    mail_from: str,
    message: bytes,
    domains: Mapping[str, DomainPolicy] | None = None,
    record: Recorder | None = None,
) -> Reply | Placement:
    """The reply refusing the message, or where to put it; see the module docstring.

    ``domains`` maps each recipient domain to its policy (``DomainPolicy(domain)`` when it has
    none); None or empty: the ``[mailauth]`` settings alone.
    """
    try:
        v = await checker.check_inbound(ip=ip, helo=helo, mail_from=mail_from, message=message)
    except Exception:
        log.exception("message deferred: the authentication checks failed")
        return CHECK_FAILED
    stored = v.header + v.message
    where = kv(ip=ip, helo=helo, sender=mail_from)
    sampled = (("sampled_out", ""),) if v.dmarc is not None and v.dmarc.sampled_out else ()
    match v.action:
        case Action.ACCEPT:
            return Placement(stored, verdict=v, reasons=sampled)
        case Action.DEFER:
            log.info("message deferred: %s", v.text, extra=where)
            return refusal(451, "4.7.0", v.text)  # RFC 7489 §6.6.3: temperror, try later
        case Action.REJECT | Action.JUNK:
            pass
        case _:
            assert_never(v.action)
    choices = {d: _choice(v, policy, p) for d, p in (domains or {"": DomainPolicy("")}).items()}
    if all(c is OnDmarcFailure.REJECT for c in choices.values()):
        log.info("message refused: %s", v.text, extra=where)
        if record is not None:
            await record(v, "reject", sampled)
        return refusal(550, "5.7.1", v.text)  # RFC 7489 §10.3
    junk = frozenset(d for d, c in choices.items() if c is not OnDmarcFailure.INBOX)
    reasons = list(sampled)
    if v.arc_override and len(junk) < len(choices):
        log.info("message accepted on the ARC seal of %s: %s", v.arc_override, v.text, extra=where)
        reasons.append(("trusted_forwarder", f"arc=pass, sealed by {v.arc_override}"))
    requested = OnDmarcFailure.REJECT if v.action is Action.REJECT else OnDmarcFailure.JUNK
    if any(c is not requested for c in choices.values()) and not reasons:
        allowed = any(allowed_sender(v, p) for p in (domains or {}).values())
        why = "the sender is allowed by the recipient domain" if allowed else "domain policy"
        reasons.append(("local_policy", why))
    if junk:
        log.info("message sent to Junk: %s", v.text, extra=where)
    everyone = len(junk) == len(choices)
    return Placement(
        stored,
        junk=everyone,
        junk_domains=frozenset() if everyone else junk,
        verdict=v,
        why=v.text if junk else "",
        disposition="quarantine" if junk else "none",
        reasons=tuple(reasons),
    )


def allowed_sender(v: Verdict, domain: DomainPolicy) -> bool:
    """Whether the recipient domain delivers this From domain whatever DMARC says."""
    sender = "" if v.dmarc is None else v.dmarc.from_domain
    return any(sender == d or sender.endswith("." + d) for d in domain.allow_from)


def _choice(v: Verdict, config: MailAuthConfig, domain: DomainPolicy) -> OnDmarcFailure:
    """What one recipient domain does with a message whose DMARC check failed."""
    if v.arc_override and domain.arc_override is not False:  # RFC 8617 §7.2: local policy
        return OnDmarcFailure.INBOX
    if allowed_sender(v, domain):  # RFC 7489 §6.7: the receiver's local policy
        return OnDmarcFailure.INBOX
    if v.action is Action.REJECT:
        if domain.on_reject is not None:
            return domain.on_reject
        return OnDmarcFailure.REJECT if config.reject_on_dmarc_reject else OnDmarcFailure.JUNK
    if domain.on_quarantine is not None:  # REJECT is not a quarantine answer (RFC 7489 §6.3)
        return (
            OnDmarcFailure.JUNK
            if domain.on_quarantine is OnDmarcFailure.REJECT
            else domain.on_quarantine
        )
    return OnDmarcFailure.JUNK if config.quarantine_to_junk else OnDmarcFailure.INBOX


Recorder = Callable[[Verdict, str, tuple[tuple[str, str], ...]], Awaitable[None]]


def recorder(store: Store, *, ip: str, helo: str, envelope_to: str) -> Recorder:
    """Writes each decision's DMARC evaluation for the aggregate report (module docstring)."""

    async def record(v: Verdict, disposition: str, reasons: tuple[tuple[str, str], ...]) -> None:
        e = evaluation_of(
            v.dmarc,
            v.spf,
            v.dkim,
            ip=ip,
            helo=helo,
            envelope_to=envelope_to,
            disposition=disposition,
            reasons=reasons,
            now=time.time(),
        )
        if e is None:
            return
        try:
            await store.add_dmarc_evaluation(e.policy_domain, e.received, e.to_json())
        except Exception as exc:  # the report loses a row; the message is not refused for it
            log.warning("DMARC evaluation not recorded: %s", exc)

    return record


async def policies_for(store: Store, domains: Sequence[str]) -> dict[str, DomainPolicy]:
    """Each recipient domain's policy, ``DomainPolicy(domain)`` for those without one."""
    found = {p.domain: p for p in await store.domain_policies(domains)}
    return {d: found.get(d, DomainPolicy(d)) for d in dict.fromkeys(domains)}


async def forward_sealed(seal: Sealer | None, placed: Placement, domain: str, raw: bytes) -> bytes:
    """``raw`` with our ARC set on top, sealed for ``domain``; unchanged without a sealer, a
    verdict, or a key (the forward goes unsealed rather than not at all)."""
    v = placed.verdict
    if seal is None or v is None:
        return raw
    try:
        return await seal(raw, domain, v.results, v.arc.cv) + raw
    except Exception:
        log.exception("ARC sealing failed; the message is forwarded unsealed")
        return raw


async def junk_mailbox(store: Store, user_id: int) -> Mailbox:
    """The user's Junk mailbox, made (``\\Junk``, subscribed) when there is none."""
    boxes = await store.list_mailboxes(user_id)
    for box in boxes:
        if JUNK_USE in (box.special_use or "").split():
            return box
    for box in boxes:
        if box.name.lower() == JUNK.lower():
            return box
    with contextlib.suppress(AlreadyExists):  # another session made it meanwhile
        # RFC 6154 §5.1: the attribute is given when the mailbox is created.
        await store.create_mailbox(user_id, JUNK, special_use=JUNK_USE)
        await store.set_subscribed(user_id, JUNK, True)
    made = await store.get_mailbox(user_id, JUNK)
    if made is None:  # the user was removed meanwhile
        raise NotFound(f"user {user_id} has no {JUNK} mailbox")
    return made


async def deliver_junk(
    store: Store, user_ids: Sequence[int], raw: bytes, now: datetime
) -> list[Appended]:
    """``courriel.queue.local.deliver_local``, into each user's Junk mailbox: one durable
    ``append`` for every recipient, all or nothing."""
    message = NewMessage(raw=raw, internal_date=now)  # parsed on first need, as for INBOX
    boxes = [(await junk_mailbox(store, u)).id for u in dict.fromkeys(user_ids)]
    return await store.append([(box, message) for box in boxes])
