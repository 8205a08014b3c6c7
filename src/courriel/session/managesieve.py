"""The ManageSieve session (RFC 5804): who may log in, and what each command does to the store.

Theory of operation
-------------------
``ManageSieveSession.handle`` takes one command from ``courriel.wire.managesieve`` and returns
the bytes to send. Passwords are accepted only inside TLS (``NO (ENCRYPT-NEEDED)`` before
STARTTLS on the clear-text port, RFC 5804 §2.1); login goes through the same ``Authenticator``
and ``AuthLimiter`` as IMAP, POP3 and SMTP, so failures on any protocol count together. Scripts
are compiled when they are uploaded (PUTSCRIPT, CHECKSCRIPT; RFC 5804 §2.6), so a script that
would fail to compile never reaches delivery, and the compiler's sentence ("line 3: ...") is
the NO text. An upload whose ``include`` chain among the user's scripts leads back to itself is
refused too. The number of scripts per user and their size are bounded (HAVESPACE, QUOTA).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from courriel import sieve
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter, FailureCount
from courriel.logs import kv
from courriel.store.base import AlreadyExists, InUse, NotFound, SieveStore, StoreError, User
from courriel.wire.managesieve import commands as c
from courriel.wire.managesieve import responses as r
from courriel.wire.managesieve.core import ManageSieveConnection
from courriel.wire.sasl import MECHANISMS, Challenge, Credentials, SaslError, SaslExchange

log = logging.getLogger("courriel.managesieve")

MAX_NAME = 128  # characters in a script name
COMPILE_INLINE = 16 * 1024  # larger scripts are compiled in a thread


@dataclass(frozen=True, slots=True)
class ScriptQuota:
    max_scripts: int = 20
    max_bytes: int = sieve.DEFAULT_LIMITS.script_bytes


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    close: bool = False  # end the connection after sending


def bad_name(name: str) -> str | None:
    """Why ``name`` cannot name a script (RFC 5804 §1.6), or None."""
    if not name:
        return "a script name cannot be empty"
    if len(name) > MAX_NAME:
        return f"a script name is at most {MAX_NAME} characters"
    for ch in name:
        cp = ord(ch)
        if cp < 0x20 or 0x7F <= cp <= 0x9F or cp in (0x2028, 0x2029):
            return "a script name cannot hold control characters"  # RFC 5804 §1.6
    return None


class ManageSieveSession:
    def __init__(
        self,
        conn: ManageSieveConnection,
        store: SieveStore,
        authenticator: Authenticator,
        limiter: AuthLimiter,
        peer_ip: str,
        *,
        quota: ScriptQuota | None = None,
        limits: sieve.Limits = sieve.DEFAULT_LIMITS,
    ) -> None:
        self._conn = conn
        self._store = store
        self._auth = authenticator
        self._limiter = limiter
        self._ip = peer_ip
        self._quota = quota or ScriptQuota()
        self._limits = limits
        self._exchange: SaslExchange | None = None
        self._failures = FailureCount()
        self.user: User | None = None

    def capabilities(self) -> bytes:
        tls = self._conn.tls_active
        return r.capabilities(
            sieve_extensions=sieve.EXTENSIONS,
            # RFC 5804 §1.7: mechanisms may be hidden until TLS is up; we take none before.
            sasl=sorted(MECHANISMS) if tls and self.user is None else [],
            starttls=not tls,
            max_redirects=self._limits.redirects,
            owner=self.user.address if self.user is not None else None,
        )

    async def handle(self, command: c.Command) -> Reply:
        match command:
            case c.Capability():
                return Reply(self.capabilities())
            case c.Noop(tag=tag):
                return Reply(r.ok("Done", None if tag is None else r.tag_code(tag)))
            case c.Logout():
                return Reply(r.ok("Logout complete"), close=True)
            case c.StartTls():
                return Reply(r.ok("Begin TLS negotiation now"))  # the adapter does the rest
            case c.Authenticate(mechanism=mechanism, initial=initial):
                return await self._authenticate(mechanism, initial)
            case c.AuthResponse(data=data):
                return await self._sasl_step(data)
            case c.AuthCancel():
                self._exchange = None
                return Reply(r.no("Authentication cancelled"))
            case c.Unauthenticate():
                log.info("unauthenticated", extra=kv(user=self._address()))
                self.user = None  # RFC 5804 §2.14.1
                return Reply(r.ok())
            case _:
                return await self._scripts(command)

    def _address(self) -> str:
        return self.user.address if self.user is not None else ""

    # --- authentication -----------------------------------------------------------------------

    async def _authenticate(self, mechanism: str, initial: bytes | None) -> Reply:
        if not self._conn.tls_active:
            self._conn.authentication_failed()
            # RFC 5804 §2.1: passwords never travel in clear
            return Reply(r.no("use STARTTLS before authenticating", r.ENCRYPT_NEEDED))
        if mechanism not in MECHANISMS:
            self._conn.authentication_failed()
            return Reply(r.no(f"unsupported mechanism {mechanism}"))
        self._exchange = SaslExchange()
        return await self._sasl(lambda ex: ex.start_decoded(mechanism, initial))

    async def _sasl_step(self, data: bytes) -> Reply:
        if self._exchange is None:
            self._conn.authentication_failed()
            return Reply(r.no("no authentication in progress"))
        return await self._sasl(lambda ex: ex.step_decoded(data))

    async def _sasl(self, step: Callable[[SaslExchange], Challenge | Credentials]) -> Reply:
        assert self._exchange is not None
        try:
            result = step(self._exchange)
        except SaslError as e:
            self._exchange = None
            self._conn.authentication_failed()
            return self._failed(f"Authentication failed: {e.detail}")
        if isinstance(result, Challenge):
            return Reply(r.challenge(result.data))
        self._exchange = None
        return await self._check(result)

    def _failed(self, text: str, code: str | None = None) -> Reply:
        if self._failures.failed():
            self._conn.close()
            return Reply(r.bye("too many failed logins"), close=True)
        return Reply(r.no(text, code))

    async def _check(self, creds: Credentials) -> Reply:
        refusal = await self._limiter.check(self._ip, creds.authcid)
        if refusal is not None:
            self._conn.authentication_failed()
            return self._failed(refusal.text, r.TRYLATER)
        user = await self._auth.authenticate(creds.authcid, creds.password)
        if user is None:
            await self._limiter.failed(self._ip, creds.authcid)
            self._conn.authentication_failed()
            return self._failed("Authentication failed")
        self._failures.succeeded()
        await self._limiter.succeeded(self._ip, creds.authcid)
        self._conn.authenticated()
        self.user = user
        log.info("logged in", extra=kv(user=user.address))
        return Reply(r.ok("Logged in"))

    # --- scripts ------------------------------------------------------------------------------

    async def _scripts(self, command: c.Command) -> Reply:
        user = self.user
        assert user is not None  # the core passes these commands only when authenticated
        try:
            return Reply(await self._script_command(user, command))
        except StoreError as e:
            log.warning("store error: %s", e, extra=kv(user=user.address))
            return Reply(r.no("the scripts cannot be read or written now", r.TRYLATER))

    async def _script_command(self, user: User, command: c.Command) -> bytes:
        match command:
            case c.HaveSpace(name=name, size=size):
                return await self._have_space(user, name, size)
            case c.PutScript(name=name, content=content):
                return await self._put(user, name, content)
            case c.CheckScript(content=content):
                return await self._compile(content) or r.ok()
            case c.ListScripts():
                scripts = await self._store.sieve_scripts(user.id)
                return r.script_list([(s.name, s.active) for s in scripts])
            case c.SetActive(name=name):
                try:
                    await self._store.activate_sieve_script(user.id, name or None)
                except NotFound:
                    return r.no(f"no script {name}", r.NONEXISTENT)
                log.info("script activated", extra=kv(user=user.address, script=name))
                return r.ok()
            case c.GetScript(name=name):
                script = await self._store.sieve_script(user.id, name)
                if script is None:
                    return r.no(f"no script {name}", r.NONEXISTENT)
                return r.script_body(script.content.encode("utf-8"))
            case c.DeleteScript(name=name):
                try:
                    await self._store.delete_sieve_script(user.id, name)
                except NotFound:
                    return r.no(f"no script {name}", r.NONEXISTENT)
                except InUse:
                    return r.no("the active script cannot be deleted", r.ACTIVE)  # RFC 5804 §2.10
                return r.ok()
            case c.RenameScript(old=old, new=new):
                return await self._rename(user, old, new)
            case (
                c.Capability()
                | c.Noop()
                | c.Logout()
                | c.StartTls()
                | c.Authenticate()
                | c.AuthResponse()
                | c.AuthCancel()
                | c.Unauthenticate()
            ):
                return r.no("not a script command")
            case _:
                assert_never(command)

    async def _have_space(self, user: User, name: str, size: int) -> bytes:
        why = bad_name(name)
        if why is not None:
            return r.no(why)
        if size > self._quota.max_bytes:
            return r.no(f"a script may be {self._quota.max_bytes} bytes", r.QUOTA_MAXSIZE)
        names = {s.name for s in await self._store.sieve_scripts(user.id)}
        if name not in names and len(names) >= self._quota.max_scripts:
            return r.no(f"at most {self._quota.max_scripts} scripts", r.QUOTA_MAXSCRIPTS)
        return r.ok()

    async def _put(self, user: User, name: str, content: bytes) -> bytes:
        space = await self._have_space(user, name, len(content))
        if not space.startswith(b"OK"):
            return space
        error = await self._compile(content)
        if error is not None:
            return error
        loop = await self._include_loop(user, name, content)
        if loop is not None:
            return r.no(loop)
        await self._store.put_sieve_script(user.id, name, content.decode("utf-8"))
        log.info("script stored", extra=kv(user=user.address, script=name, size=len(content)))
        return r.ok()

    async def _rename(self, user: User, old: str, new: str) -> bytes:
        why = bad_name(new)
        if why is not None:
            return r.no(why)
        try:
            await self._store.rename_sieve_script(user.id, old, new)
        except NotFound:
            return r.no(f"no script {old}", r.NONEXISTENT)
        except AlreadyExists:
            return r.no(f"a script {new} exists", r.ALREADYEXISTS)  # RFC 5804 §2.11.1
        return r.ok()

    async def _compile(self, content: bytes) -> bytes | None:
        """None when ``content`` compiles; else the NO saying why (RFC 5804 §2.6)."""
        try:
            if len(content) > COMPILE_INLINE:
                await asyncio.to_thread(sieve.compile_script, content, self._limits)
            else:
                sieve.compile_script(content, self._limits)
        except sieve.SieveError as e:
            return r.no(str(e))
        return None

    async def _include_loop(self, user: User, name: str, content: bytes) -> str | None:
        """A sentence when the personal includes starting at this script lead back to it."""
        script = sieve.compile_script(content, self._limits)
        paths: list[list[str]] = [[name, n] for where, n in script.includes if where == ":personal"]
        seen: set[str] = set()
        while paths and len(seen) <= self._limits.includes:
            path = paths.pop()
            last = path[-1]
            if last == name:
                return "scripts would include each other in a loop: " + " -> ".join(path)
            if last in seen:
                continue
            seen.add(last)
            stored = await self._store.sieve_script(user.id, last)
            if stored is None:
                continue
            try:
                inner = sieve.compile_script(stored.content.encode("utf-8"), self._limits)
            except sieve.SieveError:
                continue
            paths.extend([*path, n] for where, n in inner.includes if where == ":personal")
        return None
