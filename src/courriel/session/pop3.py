"""POP3 session policy: who may log in, what the maildrop holds, what QUIT removes.

Theory of operation
-------------------
One ``Pop3Session`` per connection, beside the sans-IO core (``courriel.wire.pop3``) it drives.
The adapter (``net/pop3.py``) hands each command event to ``handle`` and writes the bytes it
returns, one write per reply. The session moves the core where the outcome is its decision
(``conn.challenge``, ``conn.authenticated``); STLS is the adapter's, because it needs the stream.

AUTHORIZATION (RFC 1939 §4): USER/PASS and SASL AUTH (RFC 5034) both end in ``_login``, which:

1. asks the shared failed-login limiter first. Over the limit the attempt is refused *without*
   checking the password, with ``-ERR [SYS/TEMP]`` (RFC 3206 §4). ``[LOGIN-DELAY]`` (RFC 2449
   §8.1.2) would tell the client the *user* logged in too recently, which is not what happened,
   and ``[AUTH]`` would make clients ask for a new password; SYS/TEMP says "try later, the
   credentials may well be fine", which is the truth; the text says which limit and how long;
2. checks the password; a failure is counted (and delayed) by the limiter and answered
   ``-ERR [AUTH]`` (RFC 3206 §5), one sentence for an unknown user and a wrong password; the
   ``MAX_SESSION_FAILURES``-th failure in a row says so and closes the connection;
3. takes the maildrop lock (``-ERR [IN-USE]``, RFC 2449 §8.1.1, while another session holds it)
   and the INBOX snapshot; only then is the core told the client is authenticated.

TRANSACTION (RFC 1939 §5): numbers index the snapshot; DELE only marks; RSET unmarks. A message
another session (IMAP) expunged meanwhile answers RETR and TOP with ``-ERR`` and stays listed:
the numbering must not change under the client.

UPDATE (RFC 1939 §6): ``handle(Quit)`` in TRANSACTION removes the marked messages with one
``Store.expunge`` call (the adapter holds ``ctx.transaction()`` around it and the reply), and the
store publishes the EXPUNGED change that IMAP sessions turn into EXPUNGE responses; the maildrop
lock is released before the reply is returned, so a client that logs in again at once, on this
node or another, never finds its maildrop still in use. A connection
that ends any other way never reaches here, so it deletes nothing. ``close`` releases the lock
whatever happened.

Every ``store.Unavailable`` (or any ``StoreError`` where none is expected) becomes
``-ERR [SYS/TEMP]`` and the session goes on; nothing was changed.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import assert_never

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter, FailureCount
from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.logs import kv
from courriel.session.pop3_maildrop import (
    DEFAULT_LEASE_SECONDS,
    Maildrop,
    MaildropLock,
    MaildropStore,
)
from courriel.store.base import NotFound, StoreError
from courriel.timeslice import OFFLOAD_BYTES, offload
from courriel.wire import sasl
from courriel.wire.pop3 import commands as c
from courriel.wire.pop3 import replies
from courriel.wire.pop3.core import Pop3Connection, State
from courriel.wire.pop3.replies import RespCode

log = logging.getLogger("courriel.pop3")

SaslResult = sasl.Challenge | sasl.Credentials


def message_gone(msg: int) -> bytes:
    """RETR/TOP of a message another session removed after this one's snapshot."""
    return replies.err(f"message {msg} was removed by another session")


def lock_lost() -> bytes:
    """The lease was taken over while this session stalled: it may no longer change anything."""
    return replies.err("maildrop lock lost; nothing was deleted", RespCode.IN_USE)


class Pop3Session:
    """The policy half of one POP3 connection (see the module docstring)."""

    def __init__(
        self,
        conn: Pop3Connection,
        store: MaildropStore,
        auth: Authenticator,
        limiter: AuthLimiter,
        peer_ip: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        lock_owner: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.conn = conn
        self.store = store
        self.auth = auth
        self.limiter = limiter
        self.peer_ip = peer_ip
        self.lease_seconds = lease_seconds
        self.clock = clock  # paces the maildrop lock's renewals
        # Unique per session, also across processes and machines sharing the store.
        self.lock_owner = lock_owner or secrets.token_hex(12)
        self.maildrop: Maildrop | None = None
        self.lock: MaildropLock | None = None
        self.user_address = ""
        self._username = ""  # from USER, for the PASS that follows
        self._exchange: sasl.SaslExchange | None = None
        self._failures = FailureCount()  # failed logins in a row on this connection

    async def handle(self, event: c.Command | c.AuthResponse) -> bytes:
        """The reply to one event from the core."""
        try:
            if isinstance(event, c.AuthResponse):
                return await self._auth_response(event)
            state = self.conn.state
            if state is State.AUTHORIZATION and isinstance(event, c.AuthorizationCommand):
                return await self._authorization(event)
            if state is State.TRANSACTION and isinstance(event, c.TransactionCommand):
                return await self._transaction(event)
            if state is State.UPDATE:
                return await self._update()
            if state is State.CLOSED:  # QUIT in AUTHORIZATION
                return replies.signing_off()
        except StoreError as e:
            log.warning("store error: %s", e)
            return replies.temporary_failure()  # RFC 3206 §4
        raise RuntimeError(f"{type(event).__name__} in state {self.conn.state.name}")

    async def close(self) -> None:
        """Releases the maildrop lock; called once when the connection ends, however it ends."""
        if self.lock is not None:
            await self.lock.release()
            self.lock = None

    # --- AUTHORIZATION ------------------------------------------------------------------------

    async def _authorization(self, event: c.AuthorizationCommand) -> bytes:
        match event:
            case c.User(name=name):
                self._username = name
                # RFC 1939 §7 lets the server say whether the mailbox exists; saying nothing
                # keeps user names from being probed.
                return replies.ok("send PASS")
            case c.Pass(password=password):
                return await self._login(self._username, password)
            case c.Auth(mechanism=mechanism, initial_response=initial):
                self._exchange = sasl.SaslExchange()
                return await self._sasl_step(lambda ex: ex.start_decoded(mechanism, initial))
            case c.Capa():
                return self.conn.capa_response()  # RFC 2449 §5
            case c.Stls():
                # The adapter answers STLS before the session sees it; reaching here is a bug.
                raise RuntimeError("STLS must be handled by the adapter")
            case c.Quit():
                return replies.signing_off()  # RFC 1939 §6: no UPDATE before login
            case _:
                assert_never(event)

    async def _auth_response(self, event: c.AuthResponse) -> bytes:
        exchange, self._exchange = self._exchange, None
        if event.cancelled or exchange is None:
            return replies.auth_cancelled()  # RFC 5034 §4: "*" fails the AUTH command
        self._exchange = exchange
        return await self._sasl_step(lambda ex: ex.step_decoded(event.data))

    async def _sasl_step(self, step: Callable[[sasl.SaslExchange], SaslResult]) -> bytes:
        exchange = self._exchange
        assert exchange is not None
        try:
            result = step(exchange)
        except sasl.SaslError:
            self._exchange = None
            return replies.auth_failed()  # RFC 3206 §5
        if isinstance(result, sasl.Challenge):
            return self.conn.challenge(result.data)  # RFC 5034 §4
        assert isinstance(result, sasl.Credentials)
        self._exchange = None
        return await self._login(result.authcid, result.password)

    async def _login(self, username: str, password: str) -> bytes:
        refusal = await self.limiter.check(self.peer_ip, username)
        if refusal is not None:
            log.info("login refused: too many failures", extra=kv(user=username))
            return self._login_failed(refusal.text, RespCode.SYS_TEMP)  # RFC 3206 §4
        user = await self.auth.authenticate(username, password)
        if user is None:
            log.info("login failed", extra=kv(user=username))
            await self.limiter.failed(self.peer_ip, username)
            return self._login_failed("authentication failed", RespCode.AUTH)  # RFC 3206 §5
        self._failures.succeeded()
        await self.limiter.succeeded(self.peer_ip, username)
        lock = MaildropLock(
            self.store, user.id, self.lock_owner, self.lease_seconds, clock=self.clock
        )
        if not await lock.acquire():
            log.info("maildrop in use", extra=kv(user=user.address))
            return replies.maildrop_locked()  # RFC 2449 §8.1.1, RFC 1939 §8
        try:
            maildrop = await Maildrop.open(self.store, user.id)
        except BaseException:
            await lock.release()
            raise
        self.lock, self.maildrop, self.user_address = lock, maildrop, user.address
        self.conn.authenticated()  # RFC 1939 §4: TRANSACTION begins
        log.info("logged in", extra=kv(user=user.address, messages=len(maildrop.entries)))
        return replies.maildrop_status(*maildrop.totals())

    # --- TRANSACTION --------------------------------------------------------------------------

    async def _transaction(self, event: c.TransactionCommand) -> bytes:
        drop = self.maildrop
        assert drop is not None
        match event:
            case c.Stat():
                return replies.stat_reply(*drop.totals())  # RFC 1939 §5
            case c.List(msg=msg):
                return self._list(msg)
            case c.Uidl(msg=msg):
                return self._uidl(msg)
            case c.Retr(msg=msg):
                return self._refuse(msg) or await self._retrieve(msg, None)
            case c.Top(msg=msg, lines=lines):
                return self._refuse(msg) or await self._retrieve(msg, lines)
            case c.Dele(msg=msg):
                refusal = self._refuse(msg)
                if refusal:
                    return refusal
                drop.marked.add(msg)  # RFC 1939 §5: removed only in the UPDATE state
                return replies.deleted(msg)
            case c.Noop():
                return replies.ok()
            case c.Rset():
                drop.marked.clear()  # RFC 1939 §5
                return replies.maildrop_status(*drop.totals())
            case c.Capa():
                return self.conn.capa_response()
            case c.Quit():
                raise RuntimeError("the core enters UPDATE on QUIT; handle sees State.UPDATE")
            case _:
                assert_never(event)

    def _list(self, msg: int | None) -> bytes:
        drop = self.maildrop
        assert drop is not None
        if msg is None:  # RFC 1939 §5: the scan listing leaves out messages marked deleted
            return replies.scan_listing((n, e.size) for n, e in drop.live())
        return self._refuse(msg) or replies.scan_line(msg, drop.entry(msg).size)

    def _uidl(self, msg: int | None) -> bytes:
        drop = self.maildrop
        assert drop is not None
        if msg is None:  # RFC 1939 §7
            return replies.uidl_listing((n, drop.uid_string(n)) for n, _ in drop.live())
        return self._refuse(msg) or replies.uidl_line(msg, drop.uid_string(msg))

    def _refuse(self, msg: int) -> bytes:
        """The -ERR for a number that names no message now; empty when it names one."""
        assert self.maildrop is not None
        if not self.maildrop.exists(msg):
            return replies.no_such_message()  # RFC 1939 §5
        if msg in self.maildrop.marked:
            return replies.already_deleted(msg)  # RFC 1939 §5: may not be referenced
        return b""

    async def _retrieve(self, msg: int, lines: int | None) -> bytes:
        assert self.maildrop is not None
        try:
            raw = await self.store.read_message(
                self.maildrop.mailbox_id, self.maildrop.entry(msg).uid
            )
        except NotFound:
            return message_gone(msg)
        heavy = len(raw) >= OFFLOAD_BYTES  # byte-stuffing 50 MB is done in a thread
        if lines is None:
            # RFC 1939 §5, byte-stuffed in one piece
            return await offload(functools.partial(replies.message_response, raw), heavy=heavy)
        top = functools.partial(replies.top_response, raw, replies.header_end(raw), lines)
        return await offload(top, heavy=heavy)  # RFC 1939 §7

    def _login_failed(self, text: str, code: RespCode) -> bytes:
        """The -ERR for a failed login; the last one allowed in a row also ends the session."""
        if self._failures.failed():
            self.conn.close()
            text += "; too many failed logins, closing the connection"
        return replies.err(text, code)

    # --- UPDATE -------------------------------------------------------------------------------

    async def _update(self) -> bytes:
        """QUIT from TRANSACTION: remove what was marked, then release the maildrop.

        The lock goes before the ``+OK`` is sent, so a client that logs in again the moment
        it reads the reply (here or on another node) finds the maildrop free.
        """
        try:
            return await self._remove_marked()
        finally:
            await self.close()

    async def _remove_marked(self) -> bytes:
        """Removes what was marked, in one call (RFC 1939 §6)."""
        drop, lock = self.maildrop, self.lock
        assert drop is not None and lock is not None
        uids = drop.marked_uids()
        if not uids:
            return replies.signing_off()
        if lock.lost:
            return lock_lost()
        try:
            await self.store.expunge(drop.mailbox_id, uids)
        except StoreError as e:
            log.warning("UPDATE failed: %s", e, extra=kv(user=self.user_address))
            return replies.update_failed()  # RFC 1939 §6
        log.info("messages removed", extra=kv(user=self.user_address, count=len(uids)))
        return replies.signing_off()
