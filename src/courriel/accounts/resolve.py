"""Where mail for one recipient address goes: local users, remote addresses, or why nowhere.

Theory of operation
-------------------
``resolve_recipient`` answers an SMTP RCPT (and the queue, at delivery) by asking the store, in
this order, and stopping at the first rule that applies (the first read, ``lookup_address``,
answers rules 1 to 3 for the address given, so a user or a plain alias costs one read):

1. the domain must be one we host, else ``NOT_LOCAL`` (the SMTP session decides whether the
   client may relay);
2. an exact user;
3. an alias: each target is resolved again by these same rules, so a target may be a user,
   another alias, a plus-address, a catch-all domain of ours, or a remote address;
4. plus-addressing: ``user+tag@d`` is tried as ``user@d`` (user, then alias); the tag of the
   address as given is kept in the result for folder rules;
5. the domain's catch-all address, resolved by the same rules;
6. otherwise ``UNKNOWN_USER``.

Expansion is a depth-first walk. An address already being expanded on the current branch, or
already expanded elsewhere, is not expanded again (it would add nothing new), which cuts loops
such as ``a -> b -> a`` and diamonds such as ``a -> {b, c} -> d``; a branch deeper than
``MAX_ALIAS_DEPTH`` alias hops is cut too. When the walk finds no recipient at all and some
branch was cut for a loop or depth, the result is ``ALIAS_LOOP`` (RFC 3463 X.4.6 "routing loop
detected"); when it finds none because targets do not exist, it is ``UNKNOWN_USER``. Targets
that lead nowhere are listed in ``dangling`` so the caller can log them, while mail still goes
to the targets that do exist (as Postfix's virtual alias expansion does).

Local parts are compared case-insensitively, like the store does, when detecting loops and
removing duplicates; remote addresses keep their local part exactly as written (RFC 5321 §2.4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from courriel.mail.address import Address, AddressError, parse_address, split_plus
from courriel.store.base import AddressLookup, Domain, User

MAX_ALIAS_DEPTH = 10


class AccountLookup(Protocol):
    """The part of ``courriel.store.base.Store`` that resolution needs: reads only."""

    async def lookup_address(self, address: str) -> AddressLookup: ...

    async def get_domain(self, name: str) -> Domain | None: ...

    async def get_user(self, address: str) -> User | None: ...

    async def alias_targets(self, source: str) -> list[str]: ...


class Outcome(enum.Enum):
    DELIVER = "deliver"  # at least one local user or remote address
    NOT_LOCAL = "not_local"  # the domain is not one of ours
    UNKNOWN_USER = "unknown_user"  # our domain, but nobody there by that name
    ALIAS_LOOP = "alias_loop"  # aliases lead only in circles or too deep


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    user_ids: tuple[int, ...] = ()  # local users, deduplicated, in the order found
    remote: tuple[str, ...] = ()  # addresses for the relay queue, deduplicated
    tag: str | None = None  # the plus-address tag of the address as given
    dangling: tuple[str, ...] = ()  # alias targets that led nowhere (for the log)
    reason: str = ""  # a sentence for the log and for SMTP replies

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.DELIVER


class _Rule(enum.Enum):
    """Which rule placed an address (rules 2 to 5 of the module docstring)."""

    USER_OR_ALIAS = "user or alias"
    PLUS = "plus-address"
    CATCH_ALL = "catch-all"


def _fold(address: Address) -> str:
    """The comparison form of a local address: local parts match case-insensitively."""
    return f"{address.local.lower()}@{address.domain}"


@dataclass(slots=True)
class _Walk:
    store: AccountLookup
    user_ids: dict[int, None] = field(default_factory=dict)  # dicts keep first-seen order
    remote: dict[str, None] = field(default_factory=dict)
    dangling: dict[str, None] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)  # aliases on the current branch
    done: dict[str, bool] = field(default_factory=dict)  # expanded aliases: led anywhere?
    cut: str = ""  # why a branch was cut (loop or depth); "" when none was
    first: AddressLookup | None = None  # ``lookup_address`` of the address resolved

    def found_anything(self) -> bool:
        return bool(self.user_ids or self.remote)

    async def target(self, text: str, depth: int) -> bool:
        """Resolves one alias or catch-all target; False when it leads nowhere."""
        try:
            address = parse_address(text)
        except AddressError:
            self.dangling[text] = None
            return False
        domain = await self.store.get_domain(address.domain)
        if domain is None:
            # Remote local parts may be case-sensitive (RFC 5321 §2.4): compare them exactly.
            self.remote[str(address)] = None
            return True
        rule, led = await self.local(address, domain, depth)
        if rule is None:
            self.dangling[str(address)] = None
        return led

    async def local(
        self, address: Address, domain: Domain, depth: int
    ) -> tuple[_Rule | None, bool]:
        """Rules 2 to 5 for an address of a hosted domain: the rule that applied (None when
        none did) and whether it led to any recipient. The first rule that applies decides,
        even when it leads nowhere: an alias whose targets are gone does not fall through to
        the catch-all.
        """
        led = await self.user_or_alias(address, depth)
        if led is not None:
            return _Rule.USER_OR_ALIAS, led
        base, tag = split_plus(address.local)
        if tag is not None:
            led = await self.user_or_alias(Address(base, address.domain), depth)
            if led is not None:
                return _Rule.PLUS, led
        if domain.catch_all is not None:
            return _Rule.CATCH_ALL, await self.via(address, [domain.catch_all], depth)
        return None, False

    async def user_or_alias(self, address: Address, depth: int) -> bool | None:
        """None when the address is neither user nor alias; else whether it led anywhere."""
        if depth == 0 and self.first is not None:  # the address given: read already
            first, self.first = self.first, None
            user, targets = first.user, list(first.alias_targets)
        else:
            user = await self.store.get_user(str(address))
            targets = [] if user is not None else await self.store.alias_targets(str(address))
        if user is not None:
            self.user_ids[user.id] = None
            return True
        if not targets:
            return None
        return await self.via(address, targets, depth)

    async def via(self, source: Address, targets: list[str], depth: int) -> bool:
        """Follows ``source``'s targets one hop deeper; False when none of them leads anywhere.

        A branch cut for a loop or for depth counts as leading somewhere, so its alias is not
        reported as dangling; if nothing at all is found, ``cut`` says why.
        """
        folded = _fold(source)
        if folded in self.active:
            self.cut = self.cut or f"the aliases of {source} lead back to {source}"
            return True
        if folded in self.done:
            return self.done[folded]  # a second path to the same alias adds nothing
        if depth >= MAX_ALIAS_DEPTH:
            self.cut = self.cut or f"aliases reach {source} after more than {MAX_ALIAS_DEPTH} steps"
            return True
        self.active.add(folded)
        led = False
        for text in targets:
            led = await self.target(text, depth + 1) or led
        self.active.discard(folded)
        self.done[folded] = led
        return led


async def resolve_recipient(store: AccountLookup, address: Address | str) -> Resolution:
    """Where mail for ``address`` goes; a ``str`` that is no address raises ``AddressError``."""
    if isinstance(address, str):
        address = parse_address(address)
    first = await store.lookup_address(str(address))
    domain = first.domain
    if domain is None:
        return Resolution(Outcome.NOT_LOCAL, reason=f"{address.domain} is not a domain of ours")
    walk = _Walk(store, first=first)
    rule, _ = await walk.local(address, domain, 0)
    dangling = tuple(walk.dangling)
    if rule is None:
        return Resolution(Outcome.UNKNOWN_USER, dangling=dangling, reason=f"no mailbox {address}")
    if not walk.found_anything():
        if walk.cut:
            return Resolution(Outcome.ALIAS_LOOP, dangling=dangling, reason=walk.cut)
        return Resolution(
            Outcome.UNKNOWN_USER,
            dangling=dangling,
            reason=f"{address} is an alias of addresses that do not exist",
        )
    return Resolution(
        Outcome.DELIVER,
        user_ids=tuple(walk.user_ids),
        remote=tuple(walk.remote),
        # A user or alias named "c++" has no tag: the "+" is part of the name.
        tag=split_plus(address.local)[1] if rule is _Rule.PLUS else None,
        dangling=dangling,
    )
