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
    imap_acl,
    imap_append,
    imap_context,
    imap_mailboxes,
    imap_messages,
    imap_metadata,
    imap_notify,
    imap_quota,
    imap_select,
    imap_shared,
    imap_sort,
    imap_uidonly,
    imap_urlauth,
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
    | c.AclCommand
    | c.GetMetadata
    | c.SetMetadata
    | c.Notify
    | c.UrlAuthCommand
)


# Changes after which a session re-reads its rights on another user's selected mailbox.
_RIGHTS_CHANGES = (ChangeKind.ACL_CHANGED, ChangeKind.RESYNC)


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
        # Other users whose changes this session follows too (RFC 4314 sharing): the owner of
        # the selected mailbox, and those NOTIFY needs (``Notifier.owners``), one subscription
        # and one task each.
        self._owners: dict[int, tuple[Subscription, asyncio.Task[None]]] = {}
        self.notifier: imap_notify.Notifier | None = None  # NOTIFY SET in force (RFC 5465)
        self._recheck_rights = False

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
                if event.command == "SETMETADATA" and event.size > imap_metadata.MAX_VALUE:
                    # RFC 5464 §4.3: refused before the client sends it
                    code = f"METADATA MAXSIZE {imap_metadata.MAX_VALUE}"
                    await self.io.send(self.conn.refuse_literal("Value too long", code))
                elif imap_append.literal_allowed(event, self.state.appendlimit):
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
            action = await self._dispatch(cmd)
            await self._follow_owner()
            return action
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
        except imap_shared.AccessWithdrawn:
            self.state.view = None
            await self.io.send(r.untagged("BYE", "Access to the selected mailbox was withdrawn"))
            return Action.CLOSE
        return Action.CONTINUE

    async def _refresh(self, *, allow_expunge: bool) -> bytes:
        try:
            return await self.state.refresh(allow_expunge=allow_expunge)
        except Unavailable:
            return b""  # the next command boundary tries again

    async def _idle_refresh(self, *, allow_expunge: bool = True) -> bytes:
        try:
            return await self._refresh(allow_expunge=allow_expunge)
        except MailboxGone:
            # Dovecot's answer too: the client learns why and reconnects to a mailbox that exists.
            self.state.view = None
            self.bye = True
            return r.untagged("BYE", "Selected mailbox was deleted")

    @property
    def pushing(self) -> bool:
        """Whether changes are sent between commands too, not only in IDLE (RFC 5465)."""
        return self.notifier is not None

    async def idle_update(self) -> bytes:
        """During IDLE, or between commands once NOTIFY is set: what changed, at once
        (RFC 2177, RFC 9051 §6.3.13, RFC 5465)."""
        self.wake.clear()
        notifier = self.notifier
        out = b""
        if self.conn.idling:
            out = await self._idle_refresh()
            out += await self._arrivals()
            out += await imap_sort.context_updates(self.state)  # RFC 5267 §4.2
        elif notifier is not None and notifier.selected_mode and not self.conn.trailing_data:
            # RFC 5465 §5.2: SELECTED pushes EXPUNGE too, SELECTED-DELAYED holds it back;
            # never while a command is half received, whose numbers it would shift.
            out = await self._idle_refresh(allow_expunge=notifier.selected_mode == "SELECTED")
            out += await self._arrivals()  # §7: EXISTS, then FETCH, then ESEARCH
            out += await imap_sort.context_updates(self.state)
        if notifier is not None:
            st = self.state
            out += await notifier.render(st.store, utf8=st.utf8, condstore=st.condstore)
            if len(notifier.owners()) > imap_notify.MAX_OWNERS:
                # RFC 5465 §5.8: more sharing users than one session follows; as NOTIFY NONE
                self.notifier = None
                text = "Too many users share mailboxes with you"
                out += r.untagged("OK", text, b"NOTIFICATIONOVERFLOW")
            await self._follow_owner()  # the shared mailboxes read again may name new owners
        return out

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
                refusal = await imap_shared.append(self.state, self.io, cmd)
                if refusal is not None:
                    await self.io.send(refusal)
                self._own_arrivals()
            case _:
                refused = imap_uidonly.refusal(cmd) if self.state.uidonly else None
                if refused is not None:
                    await self.io.send(refused)
                    return Action.CONTINUE
                pre = await self._pre(cmd)
                pre += await self._arrivals()
                reply = pre + await self._reply(cmd)
                if isinstance(cmd, c.Copy | c.Move | c.Replace):
                    self._own_arrivals()
                await self.io.send(await self._with_context_updates(reply))
        return Action.CONTINUE

    async def _arrivals(self) -> bytes:
        """The FETCH NOTIFY asks for after the EXISTS of new messages (RFC 5465 §5.2)."""
        view = self.state.view
        if view is None or not view.arrived:
            return b""
        uids, view.arrived = view.arrived, []
        fetch = self.notifier.new_fetch if self.notifier is not None else ()
        if not fetch:
            return b""
        return await imap_notify.new_message_fetch(self.state, self.io, uids, fetch)

    def _own_arrivals(self) -> None:
        """RFC 5465 §5.2: no FETCH for the messages this session added (APPEND, COPY, MOVE,
        REPLACE); the EXISTS it was given for them is enough."""
        if self.state.view is not None:
            self.state.view.arrived.clear()

    async def _with_context_updates(self, reply: bytes) -> bytes:
        """RFC 5267 §4.3 updates of the search contexts, before the tagged response; the
        NOTIFY FETCH of messages the command's own refresh announced goes first (§7)."""
        updates = await self._arrivals() + await imap_sort.context_updates(self.state)
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
        if self._recheck_rights:
            self._recheck_rights = False
            await imap_shared.recheck_rights(self.state)  # MailboxGone when "r" is gone
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
        if st.user is not None:
            shared = await imap_shared.intercept(st, self.io, cmd, self._status_fn())
            if shared is not None:
                return shared  # another user's mailbox (RFC 4314)
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
                names = [box.name for box, _ in await imap_acl.listable(st)]
                return await imap_mailboxes.lsub(
                    st.store, st.user_id, cmd, utf8=st.utf8, shared=names
                )
            case c.Namespace():
                return imap_acl.namespace(cmd.tag, st.utf8)
            case c.Status():
                # RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE-enabling command
                first = "HIGHESTMODSEQ" in cmd.items and st.enable_condstore()
                code = st.condstore_code(first)
                status = await imap_mailboxes.status(
                    st.store, st.user_id, cmd, self._status_fn(), code
                )
                return st.condstore_announce(first) + status
            case c.Idle():
                return self.conn.start_idle(cmd.tag)
            case c.GetQuota():
                return await imap_quota.getquota(st, cmd)
            case c.GetQuotaRoot():
                return await imap_quota.getquotaroot(st, cmd)
            case c.SetQuota():
                return imap_quota.setquota(cmd)
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
            case c.SetAcl() | c.DeleteAcl() | c.GetAcl() | c.ListRights() | c.MyRights():
                return await imap_acl.command(st, cmd)
            case c.Notify():
                return await self._notify(cmd)
            case c.GenUrlAuth() | c.ResetKey() | c.UrlFetch():
                return await imap_urlauth.command(st, cmd)
            case c.GetMetadata():
                return await imap_metadata.getmetadata(st, cmd)
            case c.SetMetadata():
                return await imap_metadata.setmetadata(st, cmd)
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
            if view.rights is not None and change.kind in (
                ChangeKind.ACL_CHANGED,
                ChangeKind.RESYNC,
            ):
                self._recheck_rights = True  # RFC 4314: a grant may have been taken back
        notifier = self.notifier
        # The notifier sorts the owners' changes from the user's own (``Notifier.note``).
        selected = view.mailbox.id if view is not None else None
        if notifier is not None and notifier.note(change, selected):
            self.wake.set()

    async def _follow_owner(self) -> None:
        """Follows the changes of the other users this session needs: the owner of the
        selected mailbox, so their sessions' and deliveries' changes reach this one, also in
        IDLE; and for NOTIFY the owners of the shared mailboxes its filters may take. Each
        owner's changes come once, whatever the reasons to follow them."""
        view = self.state.view
        user = self.state.user
        wanted: set[int] = set()
        selected_owner = None
        if view is not None and user is not None and view.mailbox.user_id != user.id:
            selected_owner = view.mailbox.user_id
            wanted.add(selected_owner)
        if self.notifier is not None and user is not None:
            wanted |= self.notifier.owners()
        for owner in set(self._owners) - wanted:
            sub, task = self._owners.pop(owner)
            await _unfollow(task, sub)
        for owner in sorted(wanted - set(self._owners)):
            sub = await self.state.store.events.subscribe(owner)
            self._owners[owner] = (sub, asyncio.create_task(self._follow(sub)))
            if owner == selected_owner and view is not None:
                view.dirty = True  # what changed between the SELECT's read and the subscription

    async def _stop_owner(self) -> None:
        owners, self._owners = self._owners, {}
        for sub, task in owners.values():
            await _unfollow(task, sub)

    async def logout(self) -> None:
        """Ends the subscription and gives the session slot back; safe to call twice."""
        self.logged_out = True
        await self._end_user()

    async def _end_user(self) -> None:
        """Ends the change subscriptions, NOTIFY and the session slot (LOGOUT, UNAUTHENTICATE)."""
        await self._stop_owner()
        await _unfollow(self._sub_task, self._sub)
        self._sub_task, self._sub = None, None
        self.notifier = None
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

    async def _notify(self, cmd: c.Notify) -> bytes:
        refused = imap_notify.refusal(cmd)
        if refused is not None:
            return refused  # RFC 5465 §5: nothing changes
        st = self.state
        boxes = await st.store.list_mailboxes(st.user_id)
        subscribed = await st.store.subscriptions(st.user_id) if cmd.groups else []
        shared = await st.store.shared_mailboxes(st.user_id) if cmd.groups else []
        notifier = imap_notify.start(cmd, boxes, subscribed, st.user_id, shared)
        if notifier is not None and len(notifier.owners()) > imap_notify.MAX_OWNERS:
            # RFC 5465 §3.1: too costly to follow; the previous NOTIFY stays in force
            code = b"NOTIFICATIONOVERFLOW"
            return r.no(cmd.tag, "Too many users share mailboxes with you", code)
        self.notifier = notifier
        await self._follow_owner()  # before the STATUS reads, so no change falls between
        out: list[bytes] = []
        if self.notifier is not None and cmd.status:
            selected = st.view.mailbox.id if st.view is not None else None
            for mailbox_id, name in self.notifier.status_targets(selected):
                items = self.notifier.items(name, condstore=st.condstore)
                line = await imap_notify.status_line(
                    st.store, mailbox_id, name, items, utf8=st.utf8
                )
                out.append(line)  # RFC 5465 §3.1: NOTIFY SET STATUS
        return b"".join(out) + r.ok(cmd.tag, "NOTIFY completed")

    def _status_fn(self) -> imap_mailboxes.StatusFn:
        st = self.state
        return imap_shared.GranteeStatus(
            st.store, st.user_id, utf8=st.utf8, appendlimit=st.appendlimit
        )

    async def _list(self, cmd: c.List) -> bytes:
        st = self.state
        shared = await imap_acl.listable(st)
        return await imap_mailboxes.list_mailboxes(
            st.store,
            st.user_id,
            cmd,
            utf8=st.utf8,
            rev2=st.rev2,
            status_of=self._status_fn(),
            shared=shared,
        )

    async def _delete(self, cmd: c.Delete) -> bytes:
        st = self.state
        view = st.view
        reply = await imap_mailboxes.delete(st.store, st.user_id, cmd)
        if (
            view is not None
            and view.mailbox.user_id == st.user_id
            and view.mailbox.name == cmd.mailbox
            and b" OK " in reply
        ):
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


async def _unfollow(task: asyncio.Task[None] | None, sub: Subscription | None) -> None:
    """Stops a task following a subscription, then closes the subscription."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if sub is not None:
        await sub.close()
