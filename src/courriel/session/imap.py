"""The IMAP session: connection state, command dispatch and sync between a user's sessions.

Theory of operation
-------------------
``Session`` owns the sans-IO core (``courriel.wire.imap.Connection``) and decides what each
event means; the adapter (``courriel.net.imap``) reads bytes, feeds ``session.conn``, passes
each event to ``handle`` and acts on the returned ``Action`` (close, STARTTLS, COMPRESS).
Output goes through ``Io.send``, normally once per command: untagged responses and the tagged
one are collected and written together.

States (RFC 9051 §3) and what moves between them::

    NOT_AUTHENTICATED --LOGIN / AUTHENTICATE ok-------> AUTHENTICATED
    AUTHENTICATED     --SELECT / EXAMINE ok-----------> SELECTED
    SELECTED          --CLOSE / UNSELECT / failed SELECT or DELETE of it--> AUTHENTICATED
    any               --LOGOUT / BYE------------------> LOGOUT (the adapter closes)

The state is derived from what the session holds (a user, a view), so it cannot disagree with
them; ``commands.allowed`` is the one table of which command runs where.

Sync: at login the session subscribes to the user's changes (``store.events``). A background
task marks the selected view dirty when a change concerns it (or on ``RESYNC``) and sets
``wake`` for IDLE. The view is refreshed at command boundaries, and at once during IDLE, by
``SelectedView.refresh``; RFC 9051 §7.5.1 decides when EXPUNGE may go out: never during
FETCH, STORE or SEARCH, and never before a command's message sequence numbers are resolved, so
the numbers a client sent mean what it meant. UID commands may receive them.
Mailbox changes (created, renamed, deleted) have no unsolicited response in IMAP without
NOTIFY (RFC 5465): other sessions see them at their next LIST; a selected mailbox renamed
elsewhere keeps working under its new name, one deleted elsewhere ends the session with BYE.

Limits: ``UserSessions`` (imap_state.py) counts this process's sessions only, since it lives
in the handlers of one process; several worker processes each allow that many per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import assert_never

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter
from courriel.logs import kv
from courriel.session import (
    imap_append,
    imap_context,
    imap_mailboxes,
    imap_messages,
    imap_select,
    imap_sort,
    imap_uidonly,
)
from courriel.session.imap_auth import Authentication, LoginResult
from courriel.session.imap_capability import ENABLEABLE, capabilities
from courriel.session.imap_selected import BadSequenceError, Listings, MailboxGone
from courriel.session.imap_state import Io, SessionState, UserSessions
from courriel.store.base import (
    Change,
    ChangeKind,
    NotFound,
    OverQuota,
    Store,
    Subscription,
    Unavailable,
)
from courriel.wire.imap import Connection, Limits, State, allowed
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.core import Event
from courriel.wire.imap.events import (
    AuthenticateResponse,
    ConnectionClosed,
    IdleDone,
    LiteralRequest,
    NeedData,
)
from courriel.wire.sasl import Challenge, Credentials

log = logging.getLogger("courriel.imap")

SERVER_ID = (("name", "courriel"), ("vendor", "courriel"))


# Commands answered with bytes alone; the others change the connection (``_dispatch``).
ReplyCommand = (
    c.Capability
    | c.Noop
    | c.Check
    | c.Id
    | c.Enable
    | c.Select
    | c.Examine
    | c.Create
    | c.Delete
    | c.Rename
    | c.Subscribe
    | c.Unsubscribe
    | c.List
    | c.Lsub
    | c.Namespace
    | c.Status
    | c.Idle
    | c.GetQuota
    | c.GetQuotaRoot
    | c.SetQuota
    | c.Close
    | c.Unselect
    | c.Expunge
    | c.Search
    | c.Sort
    | c.Thread
    | c.CancelUpdate
    | c.Replace
    | c.Fetch
    | c.Store
    | c.Copy
    | c.Move
)


class Action(enum.Enum):
    CONTINUE = "continue"
    CLOSE = "close"
    STARTTLS = "starttls"  # the OK was sent; the adapter starts TLS
    COMPRESS = "compress"  # the OK was sent; the adapter starts DEFLATE


class Session:
    def __init__(
        self,
        *,
        store: Store,
        auth: Authenticator,
        limiter: AuthLimiter,
        io: Io,
        hostname: str,
        peer_ip: str,
        tls: bool,
        appendlimit: int,
        sessions: UserSessions,
        listings: Listings | None = None,
    ) -> None:
        self.conn = Connection(Limits(max_literal=appendlimit))
        self.io = io
        self.hostname = hostname
        self.tls = tls
        self.compressed = False
        self.state = SessionState(store=store, appendlimit=appendlimit)
        if listings is not None:
            self.state.listings = listings
        self.auth = Authentication(auth, limiter, peer_ip)
        self.sessions = sessions
        self.wake = asyncio.Event()  # a change arrived (IDLE waits on it)
        self.logged_out = False
        self.bye = False  # a BYE was sent: the adapter closes after writing it
        self._sub: Subscription | None = None
        self._released = False  # the user's session slot was given back
        self._sub_task: asyncio.Task[None] | None = None

    # --- state ----------------------------------------------------------------------------------

    @property
    def protocol_state(self) -> State:
        if self.logged_out:
            return State.LOGOUT
        if self.state.user is None:
            return State.NOT_AUTHENTICATED
        return State.AUTHENTICATED if self.state.view is None else State.SELECTED

    @property
    def authenticated(self) -> bool:
        return self.state.user is not None

    def capability_list(self) -> list[str]:
        return capabilities(
            self.protocol_state,
            tls=self.tls,
            appendlimit=self.state.appendlimit,
            compressed=self.compressed,
        )

    def greeting(self) -> bytes:
        code = r.capability_code(self.capability_list())
        return r.untagged("OK", f"{self.hostname} courriel IMAP ready", code)  # RFC 9051 §7.1.1

    # --- events ---------------------------------------------------------------------------------

    async def handle(self, event: Event) -> Action:
        """One event from the core; writes the responses through ``io``."""
        match event:
            case NeedData() | ConnectionClosed():
                return Action.CLOSE if isinstance(event, ConnectionClosed) else Action.CONTINUE
            case LiteralRequest():
                if imap_append.literal_allowed(event, self.state.appendlimit):
                    await self.io.send(self.conn.accept_literal())
                else:
                    await self.io.send(self.conn.refuse_literal("Message too big"))  # RFC 7889
                return Action.CONTINUE
            case IdleDone():
                out = await self._idle_refresh()
                if self.bye:
                    await self.io.send(out)
                    return Action.CLOSE
                await self.io.send(out + r.ok(event.tag, "IDLE terminated"))
                return Action.CONTINUE
            case AuthenticateResponse():
                return await self._sasl_step(event)
            case _:
                return await self.command(event)

    async def command(self, cmd: c.Command) -> Action:
        if not allowed(cmd, self.protocol_state):
            await self.io.send(r.bad(cmd.tag, "Command not allowed in this state"))
            return Action.CONTINUE
        try:
            return await self._dispatch(cmd)
        except BadSequenceError as e:
            await self.io.send(r.bad(cmd.tag, str(e)))
        except Unavailable as e:
            log.warning("%s refused: the store is unavailable: %s", type(cmd).__name__, e)
            await self.io.send(r.no(cmd.tag, "Try again later", r.UNAVAILABLE))  # RFC 5530
        except OverQuota:
            await self.io.send(r.no(cmd.tag, "Over quota", r.OVERQUOTA))  # RFC 5530
        except NotFound:
            await self.io.send(r.no(cmd.tag, "No such mailbox", r.NONEXISTENT))
        except MailboxGone:
            self.state.view = None
            await self.io.send(r.untagged("BYE", "Selected mailbox was deleted"))
            return Action.CLOSE
        return Action.CONTINUE

    async def _refresh(self, *, allow_expunge: bool) -> bytes:
        try:
            return await self.state.refresh(allow_expunge=allow_expunge)
        except Unavailable:
            return b""  # the next command boundary tries again

    async def _idle_refresh(self) -> bytes:
        try:
            return await self._refresh(allow_expunge=True)
        except MailboxGone:
            # Dovecot's answer too: the client learns why and reconnects to a mailbox that exists.
            self.state.view = None
            self.bye = True
            return r.untagged("BYE", "Selected mailbox was deleted")

    async def idle_update(self) -> bytes:
        """During IDLE: what changed, at once (RFC 2177, RFC 9051 §6.3.13)."""
        self.wake.clear()
        out = await self._idle_refresh()
        return out + await imap_sort.context_updates(self.state)

    # --- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, cmd: c.Command) -> Action:
        """Commands that change the connection itself; the rest answer with bytes."""
        match cmd:
            case c.Logout():
                await self.logout()
                bye = r.untagged("BYE", "Logging out")
                await self.io.send(bye + r.ok(cmd.tag, "LOGOUT completed"))
                return Action.CLOSE
            case c.StartTLS():
                if self.tls:
                    await self.io.send(r.bad(cmd.tag, "TLS is already active"))
                    return Action.CONTINUE
                await self.io.send(r.ok(cmd.tag, "Begin TLS negotiation now"))  # RFC 9051 §6.2.1
                return Action.STARTTLS
            case c.Login():
                return await self._login(cmd)
            case c.Authenticate():
                return await self._authenticate(cmd)
            case c.Compress():
                return await self._compress(cmd)
            case c.Unauthenticate():
                await self._end_user()
                # RFC 8437 §3: as a new connection, minus TLS and COMPRESS, which stay
                self.state = SessionState(
                    store=self.state.store,
                    appendlimit=self.state.appendlimit,
                    listings=self.state.listings,
                )
                await self.io.send(r.ok(cmd.tag, "UNAUTHENTICATE completed"))
            case c.Append():
                refusal = await imap_append.append(self.state, self.io, cmd)
                if refusal is not None:
                    await self.io.send(refusal)
            case _:
                refused = imap_uidonly.refusal(cmd) if self.state.uidonly else None
                if refused is not None:
                    await self.io.send(refused)
                    return Action.CONTINUE
                reply = await self._pre(cmd) + await self._reply(cmd)
                await self.io.send(await self._with_context_updates(reply))
        return Action.CONTINUE

    async def _with_context_updates(self, reply: bytes) -> bytes:
        """RFC 5267 §4.3 updates of the search contexts, before the tagged response."""
        updates = await imap_sort.context_updates(self.state)
        if not updates:
            return reply
        before = reply.rfind(b"\r\n", 0, len(reply) - 2)  # the tagged line is the last
        tagged = before + 2 if before >= 0 else 0
        return reply[:tagged] + updates + reply[tagged:]

    async def _pre(self, cmd: ReplyCommand) -> bytes:
        """Pending changes, sent before the command's own responses (RFC 9051 §7.5.1).

        No EXPUNGE before a command that carries message sequence numbers: it would renumber
        what the client meant. Nothing before SELECT, CLOSE and UNSELECT, which drop the view.
        """
        match cmd:
            case c.Select() | c.Examine() | c.Close() | c.Unselect():
                return b""
            case (
                c.Fetch()
                | c.Store()
                | c.Search()
                | c.Sort()
                | c.Thread()
                | c.Copy()
                | c.Move()
                | c.Replace()
            ):
                return await self._refresh(allow_expunge=cmd.uid)
            case _:
                return await self._refresh(allow_expunge=True)

    async def _reply(self, cmd: ReplyCommand) -> bytes:
        st = self.state
        match cmd:
            case c.Capability():
                caps = r.capability(self.capability_list())
                return caps + r.ok(cmd.tag, "CAPABILITY completed")
            case c.Noop() | c.Check():
                return r.ok(
                    cmd.tag, "NOOP completed" if isinstance(cmd, c.Noop) else "CHECK completed"
                )
            case c.Id():
                return r.id_response(SERVER_ID) + r.ok(cmd.tag, "ID completed")  # RFC 2971
            case c.Enable():
                return self._enable(cmd)
            case c.Select() | c.Examine():
                return await imap_select.select(st, cmd)
            case c.Create():
                return await imap_mailboxes.create(st.store, st.user_id, cmd)
            case c.Delete():
                return await self._delete(cmd)
            case c.Rename():
                return await imap_mailboxes.rename(st.store, st.user_id, cmd)
            case c.Subscribe() | c.Unsubscribe():
                on = isinstance(cmd, c.Subscribe)
                return await imap_mailboxes.subscribe(
                    st.store, st.user_id, cmd.tag, cmd.mailbox, on
                )
            case c.List():
                return await self._list(cmd)
            case c.Lsub():
                return await imap_mailboxes.lsub(st.store, st.user_id, cmd, utf8=st.utf8)
            case c.Namespace():
                return imap_mailboxes.namespace(cmd.tag, st.utf8)
            case c.Status():
                # RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE-enabling command
                first = "HIGHESTMODSEQ" in cmd.items and st.enable_condstore()
                code = st.condstore_code(first)
                return await imap_mailboxes.status(
                    st.store, st.user_id, cmd, self._status_fn(), code
                )
            case c.Idle():
                return self.conn.start_idle(cmd.tag)
            case c.GetQuota():
                return await imap_append.getquota(st, cmd)
            case c.GetQuotaRoot():
                return await imap_append.getquotaroot(st, cmd)
            case c.SetQuota():
                return imap_append.setquota(cmd)
            case c.Close() | c.Unselect():
                return await imap_select.close(st, cmd)
            case c.Expunge():
                return await imap_messages.expunge(st, cmd)
            case c.Search():
                return await imap_messages.search(st, cmd)
            case c.Sort():
                return await imap_sort.sort(st, cmd)
            case c.Thread():
                return await imap_sort.thread(st, cmd)
            case c.CancelUpdate():
                return imap_context.cancel(st.selected(), cmd)
            case c.Replace():
                return await imap_append.replace(st, cmd)
            case c.Fetch():
                return await imap_messages.fetch(st, self.io, cmd)
            case c.Store():
                return await imap_messages.store(st, cmd)
            case c.Copy() | c.Move():
                return await imap_messages.copy_or_move(st, cmd)
            case _:
                assert_never(cmd)

    # --- authentication -------------------------------------------------------------------------

    async def _login(self, cmd: c.Login) -> Action:
        if not self.tls:
            # RFC 9051 §6.2.3: LOGINDISABLED until TLS is active
            await self.io.send(r.no(cmd.tag, "Use STARTTLS first", r.PRIVACYREQUIRED))
            return Action.CONTINUE
        result = await self.auth.check(cmd.tag, cmd.username, cmd.password)
        return await self._finish_login(cmd.tag, result)

    async def _authenticate(self, cmd: c.Authenticate) -> Action:
        if not self.tls:
            await self.io.send(r.no(cmd.tag, "Use STARTTLS first", r.PRIVACYREQUIRED))
            return Action.CONTINUE
        return await self._sasl_result(
            self.auth.start(cmd.tag, cmd.mechanism, cmd.initial_response)
        )

    async def _sasl_step(self, event: AuthenticateResponse) -> Action:
        if self.auth.exchange is None:
            return Action.CONTINUE
        if event.cancelled:
            await self.io.send(self.auth.cancel())
            return Action.CONTINUE
        return await self._sasl_result(self.auth.step(event.data))

    async def _sasl_result(self, step: Challenge | Credentials | bytes) -> Action:
        tag = self.auth.tag
        if isinstance(step, bytes):
            await self.io.send(step)
            return Action.CONTINUE
        if isinstance(step, Challenge):
            await self.io.send(self.conn.sasl_challenge(tag, step.data))
            return Action.CONTINUE
        try:
            result = await self.auth.check(tag, step.authcid, step.password)
        except Unavailable:
            await self.io.send(r.no(tag, "Try again later", r.UNAVAILABLE))
            return Action.CONTINUE
        return await self._finish_login(tag, result)

    async def _finish_login(self, tag: str, result: LoginResult) -> Action:
        user = result.user
        if user is None:
            if result.close:
                bye = r.untagged("BYE", "Too many failed logins, closing")
                await self.io.send(result.reply + bye)
                return Action.CLOSE
            await self.io.send(result.reply)
            return Action.CONTINUE
        if not self.sessions.take(user.id):
            text = "Too many sessions for this user"
            await self.io.send(r.no(tag, text, r.LIMIT))  # RFC 5530
            return Action.CONTINUE
        self.state.user = user
        self._sub = await self.state.store.events.subscribe(user.id)
        self._sub_task = asyncio.create_task(self._follow(self._sub), name="imap-changes")
        code = r.capability_code(self.capability_list())
        log.info("logged in", extra=kv(user=user.address))
        await self.io.send(r.ok(tag, "Logged in", code))  # RFC 9051 §6.2.3
        return Action.CONTINUE

    async def _follow(self, sub: Subscription) -> None:
        async for change in sub:
            self.on_change(change)

    def on_change(self, change: Change) -> None:
        view = self.state.view
        if view is not None and (
            change.mailbox_id == view.mailbox.id or change.kind is ChangeKind.RESYNC
        ):
            view.dirty = True
            self.wake.set()

    async def logout(self) -> None:
        """Ends the subscription and gives the session slot back; safe to call twice."""
        self.logged_out = True
        await self._end_user()

    async def _end_user(self) -> None:
        if self._sub_task is not None:
            self._sub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sub_task
            self._sub_task = None
        if self._sub is not None:
            await self._sub.close()
            self._sub = None
        if self.state.user is not None and not self._released:
            self._released = True
            self.sessions.release(self.state.user.id)
        if not self.logged_out:
            self._released = False  # UNAUTHENTICATE: a later login takes a slot again

    # --- the rest -------------------------------------------------------------------------------

    def _enable(self, cmd: c.Enable) -> bytes:
        st = self.state
        done: list[str] = []
        for cap in cmd.capabilities:
            name = cap.upper()
            if name not in ENABLEABLE or name in st.enabled:
                continue  # RFC 5161 §3.1: unknown names are ignored
            st.enabled.append(name)
            done.append("IMAP4rev2" if name == "IMAP4REV2" else name)
            if name in ("CONDSTORE", "QRESYNC"):
                st.enable_condstore()  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
            if name == "QRESYNC":
                st.qresync = True
            if name == "UIDONLY":
                st.uidonly = True  # RFC 9586 §3
            if name in ("IMAP4REV2", "UTF8=ACCEPT"):
                st.utf8 = True
                st.rev2 = st.rev2 or name == "IMAP4REV2"
                self.conn.enable_utf8()  # RFC 6855 §3, RFC 9051 §6.3.1
        return r.enabled(done) + r.ok(cmd.tag, "ENABLE completed")

    def _status_fn(self) -> imap_mailboxes.StatusFn:
        st = self.state
        return imap_mailboxes.StatusFn(st.store, utf8=st.utf8, appendlimit=st.appendlimit)

    async def _list(self, cmd: c.List) -> bytes:
        st = self.state
        return await imap_mailboxes.list_mailboxes(
            st.store, st.user_id, cmd, utf8=st.utf8, rev2=st.rev2, status_of=self._status_fn()
        )

    async def _delete(self, cmd: c.Delete) -> bytes:
        st = self.state
        view = st.view
        reply = await imap_mailboxes.delete(st.store, st.user_id, cmd)
        if view is not None and view.mailbox.name == cmd.mailbox and b" OK " in reply:
            st.view = None  # this session deleted its own selected mailbox
            return r.untagged("OK", "Selected mailbox deleted", r.CLOSED) + reply
        return reply

    async def _compress(self, cmd: c.Compress) -> Action:
        if self.compressed:
            await self.io.send(r.no(cmd.tag, "DEFLATE already active", r.COMPRESSIONACTIVE))
            return Action.CONTINUE
        if cmd.mechanism != "DEFLATE":
            await self.io.send(r.bad(cmd.tag, f"Unknown compression {cmd.mechanism}"))  # RFC 4978
            return Action.CONTINUE
        await self.io.send(r.ok(cmd.tag, "DEFLATE active"))  # RFC 4978 §3
        self.compressed = True
        return Action.COMPRESS
