"""``courriel domain policy DOMAIN [--on-reject ...] [--on-quarantine ...] [--arc-override ...]``.

Theory of operation
-------------------
Each hosted domain may answer mail that fails its sender's DMARC policy differently from the
server's ``[mailauth]`` settings (``courriel.store.base.DomainPolicy``): refuse it, put it in
the recipient's Junk mailbox, or deliver it to INBOX; it may refuse the trusted ARC sealers'
override, and name From domains it delivers to INBOX whatever DMARC says (``--allow-from``).
Without an option the command prints the policy in force, each line saying whether it is the
domain's own choice or the server's default; each option given changes one choice (``default``
gives it back to ``[mailauth]``) and keeps the others. The SMTP session reads the policy for
every message, so a change applies at once on every node.

``add_command`` puts the command under ``courriel domain``; it is handed ``courriel.cli``'s
``store_command`` wrapper, so this module does not import ``courriel.cli``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from courriel.admin import AdminError, domain_name
from courriel.config import Config, MailAuthConfig
from courriel.store.base import DomainPolicy, NotFound, OnDmarcFailure, Store

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]
StoreCommand = Callable[[StoreOp], Callable[[argparse.Namespace], int]]
DEFAULT = "default"


def effective(policy: DomainPolicy, config: MailAuthConfig) -> list[tuple[str, str, bool]]:
    """(setting, value in force, whether the domain chose it) for each choice."""
    on_reject = policy.on_reject or (
        OnDmarcFailure.REJECT if config.reject_on_dmarc_reject else OnDmarcFailure.JUNK
    )
    on_quarantine = policy.on_quarantine or (
        OnDmarcFailure.JUNK if config.quarantine_to_junk else OnDmarcFailure.INBOX
    )
    arc = policy.arc_override is not False
    return [
        ("on-reject", on_reject.value, policy.on_reject is not None),
        ("on-quarantine", on_quarantine.value, policy.on_quarantine is not None),
        ("arc-override", "yes" if arc else "no", policy.arc_override is not None),
        ("allow-from", ",".join(policy.allow_from) or "-", bool(policy.allow_from)),
    ]


def _failure(value: str | None, current: OnDmarcFailure | None) -> OnDmarcFailure | None:
    if value is None:
        return current
    return None if value == DEFAULT else OnDmarcFailure(value)


def _domains(text: str) -> tuple[str, ...]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    return tuple(dict.fromkeys(domain_name(n) for n in names))


def _yes_no(value: str | None, current: bool | None) -> bool | None:
    if value is None:
        return current
    return None if value == DEFAULT else value == "yes"


async def _policy(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    name = domain_name(args.domain)
    if await store.get_domain(name) is None:
        raise AdminError(f"unknown domain {name}")
    found = await store.domain_policies([name])
    policy = found[0] if found else DomainPolicy(name)
    changes = (args.on_reject, args.on_quarantine, args.arc_override, args.allow_from)
    if any(c is not None for c in changes):
        policy = replace(
            policy,
            on_reject=_failure(args.on_reject, policy.on_reject),
            on_quarantine=_failure(args.on_quarantine, policy.on_quarantine),
            arc_override=_yes_no(args.arc_override, policy.arc_override),
            allow_from=policy.allow_from if args.allow_from is None else _domains(args.allow_from),
        )
        try:
            await store.set_domain_policy(policy)
        except NotFound:
            raise AdminError(f"unknown domain {name}") from None
    print(f"mail-authentication policy of {name}:")
    for setting, value, own in effective(policy, cfg.mailauth):
        print(f"  {setting:<14} {value:<6} ({'set for this domain' if own else 'server default'})")


def add_command(
    sub: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    store_command: StoreCommand,
) -> None:
    p = sub.add_parser(
        "policy",
        help="what the domain does with mail failing DMARC; show or change",
        parents=[common],
    )
    p.add_argument("domain")
    p.add_argument(
        "--on-reject",
        choices=("reject", "junk", "inbox", DEFAULT),
        help="mail failing a p=reject policy: refuse it (550), to Junk, or to INBOX",
    )
    p.add_argument(
        "--on-quarantine",
        choices=("junk", "inbox", DEFAULT),
        help="mail failing a p=quarantine policy: to Junk or to INBOX",
    )
    p.add_argument(
        "--arc-override",
        choices=("yes", "no", DEFAULT),
        help="deliver to INBOX mail whose trusted ARC sealer saw dmarc=pass "
        "([mailauth] trusted_arc_sealers)",
    )
    p.add_argument(
        "--allow-from",
        metavar="DOMAIN[,DOMAIN...]",
        help="deliver mail from these domains (and their subdomains) to INBOX even when it "
        'fails DMARC; "" empties the list',
    )
    p.set_defaults(handler=store_command(_policy))
