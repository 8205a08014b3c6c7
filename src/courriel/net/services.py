"""What each protocol's handlers use of the server: narrow records that ``courriel.app`` builds.

net/ never sees the ``App``: each protocol gets only the services it uses, so a protocol module
can be read (and tested) knowing exactly what it may touch, and net/ imports nothing of app.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter
from courriel.net.tls import TLSManager
from courriel.store.base import Store


@dataclass(frozen=True, slots=True)
class LoginServices:
    """What POP3 and ManageSieve sessions use: the store, logins, TLS."""

    store: Store
    auth: Authenticator
    limiter: AuthLimiter  # failed-login limits shared by every protocol
    tls: TLSManager  # ``tls.context`` at the moment of STARTTLS is the one to use
    hostname: str
