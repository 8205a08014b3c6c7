"""SMTP AUTH (RFC 4954) for the submission session: SASL PLAIN and LOGIN, limits, replies.

Theory of operation
-------------------
The core frames the exchange (334 challenges, base64, "*" to cancel); ``SmtpAuth`` runs the
mechanism (``courriel.wire.sasl``) and checks the password (``Authenticator``). Before any
password is checked the shared ``AuthLimiter`` is asked: a client address or account over its
failure limit gets 454 4.7.0 without a check (RFC 4954 §6: temporary failure), so guessing
cannot go on at full speed from one address or against one account; the text says which
limit and for how long. A wrong password is counted, answered after the failure delay, with
535 5.7.8 (RFC 4954 §6), which never says whether the user exists; the
``MAX_SESSION_FAILURES``-th failure in a row is answered 421 4.7.0 instead, which closes the
connection. A success is reported to the limiter, which then knows the client's address as
the account's own. The store failing is 454 4.7.0, never "wrong password".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter, FailureCount, Refusal
from courriel.logs import kv
from courriel.store.base import StoreError, User
from courriel.wire import sasl
from courriel.wire.smtp import Reply, challenge
from courriel.wire.smtp import replies as r

TOO_MANY_FAILURES = Reply(
    454, "4.7.0", "too many failed logins: wait a few minutes before trying again"
)
# RFC 5321 §3.8: 421 closes the connection; sent for the last failure a session may have.
CLOSING = Reply(421, "4.7.0", "too many failed logins, closing the connection")
AUTH_UNAVAILABLE = Reply(454, "4.7.0", "cannot check passwords right now: try again later")
MALFORMED = Reply(501, "5.5.2", "malformed authentication response")
AUTHZID_REFUSED = Reply(535, "5.7.8", "you may only authorize as yourself")

log = logging.getLogger("courriel.smtp")

_Step = Callable[[sasl.SaslExchange], sasl.Challenge | sasl.Credentials]

_SASL_REPLIES = {
    sasl.SaslFailure.UNKNOWN_MECHANISM: r.AUTH_MECHANISM_UNKNOWN,
    sasl.SaslFailure.BAD_BASE64: r.AUTH_BAD_BASE64,
    sasl.SaslFailure.CANCELLED: r.AUTH_CANCELLED,
    sasl.SaslFailure.MALFORMED: MALFORMED,
    sasl.SaslFailure.AUTHZID_REFUSED: AUTHZID_REFUSED,
}


def _refused(refusal: Refusal) -> Reply:
    """454 4.7.0 (RFC 4954 §6: temporary) with the limiter's reason and the time left."""
    return Reply(TOO_MANY_FAILURES.code, TOO_MANY_FAILURES.enhanced, refusal.text)


class SmtpAuth:
    """One session's AUTH state: the exchange in progress and, once it succeeded, the user."""

    def __init__(self, authenticator: Authenticator, limiter: AuthLimiter, client_ip: str) -> None:
        self._auth = authenticator
        self._limiter = limiter
        self._ip = client_ip
        self._exchange: sasl.SaslExchange | None = None
        self.user: User | None = None
        self._failures = FailureCount()  # failed logins in a row on this connection

    def _failed(self, reply: Reply) -> Reply:
        """``reply``, or 421 (which closes) for the last failure allowed in a row."""
        return CLOSING if self._failures.failed() else reply

    def reset(self) -> None:
        """Forgets the login (STARTTLS: RFC 3207 §4.2)."""
        self._exchange = None
        self.user = None

    async def start(self, mechanism: str, initial: bytes | None) -> Reply:
        try:
            refusal = await self._limiter.check(self._ip, None)
            if refusal is not None:
                return self._failed(_refused(refusal))  # RFC 4954 §6
        except StoreError:
            return AUTH_UNAVAILABLE
        self._exchange = sasl.SaslExchange()
        return await self._advance(lambda ex: ex.start_decoded(mechanism, initial))

    async def step(self, data: bytes) -> Reply:
        if self._exchange is None:
            return r.AUTH_CANCELLED
        return await self._advance(lambda ex: ex.step_decoded(data))

    async def _advance(self, call: _Step) -> Reply:
        exchange = self._exchange
        assert exchange is not None
        try:
            step = call(exchange)
        except sasl.SaslError as e:
            self._exchange = None
            return _SASL_REPLIES[e.failure]
        if isinstance(step, sasl.Challenge):
            return challenge(step.data)  # RFC 4954 §4: 334
        self._exchange = None
        return await self._verify(step)

    async def _verify(self, credentials: sasl.Credentials) -> Reply:
        username = credentials.authcid
        try:
            refusal = await self._limiter.check(self._ip, username)
            if refusal is not None:
                log.warning("login refused: too many failures", extra=kv(user=username))
                return self._failed(_refused(refusal))
            user = await self._auth.authenticate(username, credentials.password)
            if user is None:
                # One line per failure, with the address: what fail2ban and friends read.
                log.warning("login failed", extra=kv(user=username, ip=self._ip))
                await self._limiter.failed(self._ip, username)
                return self._failed(r.AUTH_FAILED)  # RFC 4954 §6: 535 5.7.8
            self._failures.succeeded()
            await self._limiter.succeeded(self._ip, username)
        except StoreError:
            return AUTH_UNAVAILABLE
        log.info("logged in", extra=kv(user=user.address))
        self.user = user
        return r.AUTH_OK
