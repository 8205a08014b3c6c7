"""Limits on failed logins, shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3.

Theory of operation
-------------------
Password guessing is made slow in two ways, as Dovecot (auth_failure_delay, anvil penalties)
and Postfix/anvil do:

* every failed attempt is answered only after ``failure_delay_seconds`` (the session's own task
  waits; nothing else is held up);
* failures are counted per client address and per account in fixed windows of
  ``failure_window_seconds``; past ``max_failures_per_ip`` or ``max_failures_per_account`` the
  protocol refuses further attempts with a temporary error, *before* checking the password, until
  the window ends.

The counters live in the store (``bump_counter`` / ``read_counter``), not in this process, so the
limits hold across worker processes and across machines sharing PostgreSQL. The account key is
the normalised address, so "Alice@Example.org" and "alice@example.org" share a count. A limit of
0 turns that check off. IPv6 addresses are counted by their /64, since one host usually owns a
whole /64.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable

from courriel.config import AuthConfig
from courriel.mail.address import AddressError, normalize_address
from courriel.store.base import Store

Sleep = Callable[[float], Awaitable[None]]


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


class AuthLimiter:
    def __init__(self, store: Store, cfg: AuthConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self._store = store
        self._cfg = cfg
        self._sleep = sleep

    async def allowed(self, ip: str, username: str | None) -> bool:
        """False when the address or the account is over its limit: refuse without checking."""
        window = self._cfg.failure_window_seconds
        if window <= 0:
            return True
        limit = self._cfg.max_failures_per_ip
        if limit and await self._store.read_counter(ip_key(ip), window) >= limit:
            return False
        limit = self._cfg.max_failures_per_account
        if username and limit:
            return await self._store.read_counter(account_key(username), window) < limit
        return True

    async def failed(self, ip: str, username: str | None) -> None:
        """Counts a failed attempt, then waits the failure delay."""
        window = self._cfg.failure_window_seconds
        if window > 0:
            await self._store.bump_counter(ip_key(ip), window)
            if username:
                await self._store.bump_counter(account_key(username), window)
        if self._cfg.failure_delay_seconds > 0:
            await self._sleep(self._cfg.failure_delay_seconds)
