"""LOGIN and AUTHENTICATE (PLAIN, LOGIN, with SASL-IR): who the client is.

Theory of operation
-------------------
Passwords are accepted only inside TLS: on the clear-text STARTTLS listener LOGIN is refused
(LOGINDISABLED, RFC 9051 §6.2.3) and AUTHENTICATE answers ``NO [PRIVACYREQUIRED]`` (RFC 5530).
Every attempt first asks the shared ``AuthLimiter`` whether the address or the account is over
its failure limit; when it is, the attempt is refused with ``NO [UNAVAILABLE]`` and a sentence
saying which limit and for how long, without looking at the password, so guessing gets no
signal. A failed attempt is counted and answered after the configured delay (the limiter
waits), with ``NO [AUTHENTICATIONFAILED]`` whatever the reason. A success tells the limiter,
which remembers the address as the account's own. After ``MAX_SESSION_FAILURES`` failures in a
row, refusals included, the result says ``close``: the session sends BYE and ends.

``Login`` holds what a successful login produced; ``courriel.session.imap.Session`` then applies
the per-user session limit and subscribes to the user's changes.

The SASL exchange itself is ``courriel.wire.sasl.SaslExchange``; the IMAP core frames it
(``+ base64`` challenges, one ``AuthenticateResponse`` per client line, ``*`` to cancel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter, FailureCount
from courriel.store.base import User
from courriel.wire.imap import responses as r
from courriel.wire.sasl import MECHANISMS, Challenge, Credentials, SaslError, SaslExchange


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The user on success; otherwise the tagged reply to send."""

    user: User | None
    reply: bytes
    close: bool = False  # too many failures in a row: say BYE after the reply


class Authentication:
    """Checks credentials for one connection; keeps the SASL exchange in progress."""

    def __init__(self, auth: Authenticator, limiter: AuthLimiter, peer_ip: str) -> None:
        self._auth = auth
        self._limiter = limiter
        self._ip = peer_ip
        self.exchange: SaslExchange | None = None
        self.tag = ""
        self._failures = FailureCount()

    async def check(self, tag: str, username: str, password: str) -> LoginResult:
        refusal = await self._limiter.check(self._ip, username)
        if refusal is not None:
            reply = r.no(tag, refusal.text, r.UNAVAILABLE)  # RFC 5530
            return LoginResult(None, reply, self._failures.failed())
        user = await self._auth.authenticate(username, password)
        if user is None:
            await self._limiter.failed(self._ip, username)
            reply = r.no(tag, "Authentication failed", r.AUTHENTICATIONFAILED)
            return LoginResult(None, reply, self._failures.failed())
        self._failures.succeeded()
        await self._limiter.succeeded(self._ip, username)
        return LoginResult(user, b"")

    def start(
        self, tag: str, mechanism: str, initial: bytes | None
    ) -> Challenge | Credentials | bytes:
        """The first step of AUTHENTICATE; bytes when it ends at once with a reply."""
        if mechanism not in MECHANISMS:
            return r.no(tag, f"Unsupported mechanism {mechanism}")  # RFC 9051 §6.2.2
        self.exchange, self.tag = SaslExchange(), tag
        return self._guard(lambda ex: ex.start_decoded(mechanism, initial))

    def step(self, data: bytes) -> Challenge | Credentials | bytes:
        return self._guard(lambda ex: ex.step_decoded(data))

    def cancel(self) -> bytes:
        self.exchange = None
        return r.bad(self.tag, "Authentication cancelled")  # RFC 9051 §6.2.2

    def _guard(
        self, f: Callable[[SaslExchange], Challenge | Credentials]
    ) -> Challenge | Credentials | bytes:
        assert self.exchange is not None
        try:
            result = f(self.exchange)
        except SaslError as e:
            self.exchange = None
            return r.no(self.tag, f"Authentication failed: {e.detail}", r.AUTHENTICATIONFAILED)
        if isinstance(result, Credentials):
            self.exchange = None
        return result
