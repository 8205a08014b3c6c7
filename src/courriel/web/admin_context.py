"""What the web admin's handlers share in one worker: the store, the configuration, login."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter
from courriel.admin import Hasher
from courriel.clientsettings import Endpoint
from courriel.config import Config
from courriel.net.tls import TLSManager
from courriel.store.base import Store
from courriel.web.admin_render import Renderer


@dataclass(frozen=True, slots=True)
class Access:
    """Login for the web admin: the same authenticator and limits as the mail protocols."""

    auth: Authenticator
    limiter: AuthLimiter
    hasher: Hasher


@dataclass(slots=True)
class AdminContext:
    store: Store
    cfg: Config
    tls: TLSManager
    access: Access
    endpoints: Sequence[Endpoint]  # the mail listeners as bound (``courriel serve``'s table)
    # listener name -> addresses it accepts on (mail and web), for the status page
    listening: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    render: Renderer = field(default_factory=Renderer)
    started: float = field(default_factory=time.time)

    @property
    def auth(self) -> Authenticator:
        return self.access.auth

    @property
    def limiter(self) -> AuthLimiter:
        return self.access.limiter

    @property
    def hasher(self) -> Hasher:
        return self.access.hasher
