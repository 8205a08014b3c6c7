"""Limits on failed logins, shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3.

Theory of operation
-------------------
The limits must slow a password guesser without locking the owner out. A per-account limit
alone does lock them out: twenty wrong passwords from anywhere and the owner's own phone is
refused too, for as long as the attacker cares to keep going. So, as Dovecot (auth_failure_delay,
anvil penalties) and Postfix/anvil do, and in this order:

1. every failed attempt is answered only after ``failure_delay_seconds`` (the session's own task
   waits; nothing else is held up), and a session that fails ``MAX_SESSION_FAILURES`` logins in
   a row is closed by its protocol, so one connection cannot keep guessing;
2. failures are counted per client address (an IPv6 client by its /64) in fixed windows of
   ``failure_window_seconds``; past ``max_failures_per_ip`` that address is refused, *before*
   the password is checked, until the window ends. This is what stops a single guesser;
3. failures are also counted per account, against guessers that spread over many addresses;
   past ``max_failures_per_account`` the account is refused likewise, *except* from an address
   it logged in from successfully in the last ``KNOWN_ADDRESS_SECONDS``: the owner's usual
   phone, laptop and office keep working while the account is under attack.

``check`` says which limit refused, and the protocols put the reason and the time left into
their NO / -ERR / 535 text, so the user knows why and for how long.

Every counter and the known (account, address) pairs live in the store (``bump_counter``,
``read_counter``, ``remember``, ``remembered``), never in this process, so the limits hold across
worker processes and across machines sharing PostgreSQL. The account key is the normalised
address, so "Alice@Example.org" and "alice@example.org" share a count. A limit of 0 turns that
check off.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from dataclasses import dataclass

from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.config import AuthConfig
from courriel.mail.address import AddressError, normalize_address
from courriel.store.base import Coordination

MAX_SESSION_FAILURES = 10  # failed logins in a row before the protocol closes the session
KNOWN_ADDRESS_SECONDS = 30 * 86400  # a successful login vouches for its address this long
_REFRESH_SECONDS = 86400  # re-remember a known address at most once a day (one write)


def ip_key(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return f"ip:{ip}"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is None:
        return f"ip:{ipaddress.ip_network(f'{addr}/64', strict=False)}"
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return f"ip:{mapped or addr}"


def account_key(username: str) -> str:
    try:
        return f"user:{normalize_address(username).lower()}"
    except AddressError:
        return f"user:{username.lower()}"


def known_key(ip: str, username: str) -> str:
    """The remembered pair (account, address) of a successful login."""
    return f"known:{account_key(username)}|{ip_key(ip)}"


class Limited(enum.Enum):
    ADDRESS = "address"  # too many failures from this client address
    ACCOUNT = "account"  # too many failures for this account, and the address is not known


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt is refused before its password is checked, and for how long."""

    limit: Limited
    retry_seconds: int

    @property
    def text(self) -> str:
        """The sentence the protocols send (after their own code)."""
        minutes = max(1, math.ceil(self.retry_seconds / 60))
        wait = f"try again in {minutes} minute{'s' if minutes > 1 else ''}"
        if self.limit is Limited.ADDRESS:
            return f"Too many failed logins from your address; {wait}"
        return (
            f"Too many failed logins for this account; {wait} "
            "(addresses that logged in before are not affected)"
        )


class AuthLimiter:
    def __init__(
        self,
        store: Coordination,
        cfg: AuthConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._cfg = cfg
        self._clock = clock  # the store's own: the windows counted there end at its times

    async def check(self, ip: str, username: str | None) -> Refusal | None:
        """None when the attempt may go on; otherwise the limit it is over."""
        window = self._cfg.failure_window_seconds
        if window <= 0:
            return None
        retry = int(window - self._clock.now() % window)  # the fixed window ends then
        limit = self._cfg.max_failures_per_ip
        if limit and await self._store.read_counter(ip_key(ip), window) >= limit:
            return Refusal(Limited.ADDRESS, retry)
        limit = self._cfg.max_failures_per_account
        if not username or not limit:
            return None
        if await self._store.read_counter(account_key(username), window) < limit:
            return None
        if await self._store.remembered(known_key(ip, username)) is not None:
            return None  # the owner's own address: the attack elsewhere does not lock it out
        return Refusal(Limited.ACCOUNT, retry)

    async def failed(self, ip: str, username: str | None) -> None:
        """Counts a failed attempt, then waits the failure delay."""
        window = self._cfg.failure_window_seconds
        if window > 0:
            await self._store.bump_counter(ip_key(ip), window)
            if username:
                await self._store.bump_counter(account_key(username), window)
        if self._cfg.failure_delay_seconds > 0:
            await self._clock.sleep(self._cfg.failure_delay_seconds)

    async def succeeded(self, ip: str, username: str) -> None:
        """Remembers that ``username`` logged in from ``ip`` (one write a day at most)."""
        if self._cfg.failure_window_seconds <= 0 or not self._cfg.max_failures_per_account:
            return  # nothing would ever ask
        key = known_key(ip, username)
        until = await self._store.remembered(key)
        if until is None or until - self._clock.now() < KNOWN_ADDRESS_SECONDS - _REFRESH_SECONDS:
            await self._store.remember(key, KNOWN_ADDRESS_SECONDS)


class FailureCount:
    """Failed logins in a row on one connection; ``over`` once the session must close."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def failed(self) -> bool:
        """Counts one; True when this was the ``MAX_SESSION_FAILURES``-th in a row."""
        self.count += 1
        return self.count >= MAX_SESSION_FAILURES

    def succeeded(self) -> None:
        self.count = 0
