"""Local delivery through each recipient's Sieve script (RFC 5228) and tag folders.

Theory of operation
-------------------
``Filters.deliver`` takes a message for local recipients and, for each, decides where it goes,
then stores every copy with *one* ``Store.append`` (all or nothing, durable on return), then
sends what the scripts asked to send. Per recipient:

1. the active script is read from the store (so every node filters alike) and compiled (a
   small cache keyed by its text); the scripts it includes are read and compiled too, up to
   ``Limits.includes``; the run itself (``courriel.sieve.run``) is in a thread, bounded by the
   step budget, so a costly script never holds the event loop;
2. no script, or a script that fails to compile or run: the implicit keep (RFC 5228 §2.10.6),
   with a log line saying why. The implicit keep goes to the folder named by the address's
   ``+tag`` when the user turned tag folders on and that folder exists, else to INBOX;
3. ``fileinto`` into a folder that does not exist files into INBOX (RFC 5228 §4.1 leaves the
   choice; creating folders named by mail from strangers is worse) unless ``:create`` (RFC 5490
   §3.2) asked for it; flags (RFC 5232) go with each copy.

Rejections are planned before anything is stored: when the caller can still refuse at SMTP
time (``refuse`` -- port 25, every recipient rejects) nothing is stored and the reason is
returned for a 550 (RFC 5429 §2.1); otherwise the sender gets a bounce (a DSN; none for the
null sender, RFC 5429 §2.1). After the append: redirects go into the outbound queue with the
original envelope sender, or into a local user's INBOX; a ``Delivered-To`` field naming the
user (RFC 9228) is added to the redirected copy, and a message that already carries it for
this user is not redirected again (a loop), nor one that carries too many; a redirect the queue
refuses now keeps the message instead. Vacation answers
(RFC 5230) go out once per sender per ``:days``, remembered in the store
(``Store.remember``), under the rules of ``courriel.sieve.vacation``. A failure after the
append is logged and does not undo the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from courriel import sieve
from courriel.accounts.resolve import Outcome, resolve_recipient
from courriel.logs import kv
from courriel.mail import dsn
from courriel.mail.address import AddressError, parse_address
from courriel.queue.bounce import Notifier
from courriel.queue.local import INBOX, deliver_local
from courriel.queue.outbound import Envelope, Queue, QueueError, Recipient
from courriel.sieve import actions as a
from courriel.sieve import vacation
from courriel.store.base import AlreadyExists, Appended, NewMessage, Store, StoreError

log = logging.getLogger("courriel.sieve")

MAX_DELIVERED_TO = 8  # a copy that passed this many redirects is not redirected again
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    user_id: int
    address: str  # the RCPT TO address that reached the user (Sieve's envelope "to")
    tag: str | None = None  # the +tag of that address (RFC 5233)


@dataclass(frozen=True, slots=True)
class Filtered:
    appended: list[Appended]
    refused: str | None = None  # every recipient rejected at SMTP time: the reason (550)


@dataclass(slots=True)
class _Plan:
    recipient: LocalRecipient
    user_address: str
    stores: list[tuple[str, frozenset[str], bool]] = field(default_factory=list)
    inbox_id: int | None = None  # read with the script: INBOX needs no read of its own
    redirects: list[a.Redirect] = field(default_factory=list)
    vacation: a.Vacation | None = None
    reject: a.Reject | None = None


class Filters:
    """Runs the recipients' scripts and carries out what they decide."""

    def __init__(
        self,
        store: Store,
        outbound: Queue,
        hostname: str,
        *,
        limits: sieve.Limits = sieve.DEFAULT_LIMITS,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._outbound = outbound
        self._hostname = hostname
        self._limits = limits
        self._notifier = notifier or Notifier(store, outbound)
        self._clock = clock
        self._compiled: OrderedDict[str, sieve.Script | sieve.SieveError] = OrderedDict()

    # --- compiling ----------------------------------------------------------------------------

    def compiled(self, text: str) -> sieve.Script:
        """The compiled script (cached by its text); raises ``SieveError``."""
        hit = self._compiled.get(text)
        if hit is None:
            try:
                hit = sieve.compile_script(text.encode("utf-8"), self._limits)
            except sieve.SieveError as e:
                hit = e
            self._compiled[text] = hit
            if len(self._compiled) > _CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(text)
        if isinstance(hit, sieve.SieveError):
            raise hit
        return hit

    async def _includes(
        self, user_id: int, script: sieve.Script
    ) -> dict[tuple[str, str], sieve.Script]:
        """Every script reachable by ``include``, read and compiled; a missing one is left
        out (the run then fails unless the include is ``:optional``)."""
        found: dict[tuple[str, str], sieve.Script] = {}
        pending = list(script.includes)
        while pending and len(found) < self._limits.includes:
            key = pending.pop()
            if key in found:
                continue
            where, name = key
            if where == ":global":
                text = await self._store.global_sieve_script(name)
            else:
                stored = await self._store.sieve_script(user_id, name)
                text = None if stored is None else stored.content
            if text is None:
                continue
            try:
                found[key] = self.compiled(text)
            except sieve.SieveError as e:
                raise sieve.RuntimeSieveError(f"the included script {name!r}: {e}") from None
            pending.extend(found[key].includes)
        return found

    # --- planning -----------------------------------------------------------------------------

    async def _plan(
        self, rcpt: LocalRecipient, raw: bytes, sender: str, now: datetime, auth: str
    ) -> _Plan:
        # The common case (no script, no tag) costs one store read, which finds INBOX too.
        first = await self._store.delivery_lookup(rcpt.user_id)
        stored = first.script
        if stored is None and not rcpt.tag:
            return _Plan(
                rcpt, rcpt.address, stores=[(INBOX, frozenset(), False)], inbox_id=first.inbox_id
            )
        boxes = {b.name for b in await self._store.list_mailboxes(rcpt.user_id)}
        keep_box = INBOX
        if rcpt.tag and rcpt.tag in boxes and await self._store.tag_folders(rcpt.user_id):
            keep_box = rcpt.tag
        if stored is None:
            return _Plan(rcpt, rcpt.address, stores=[(keep_box, frozenset(), False)])
        user = await self._store.get_user_by_id(rcpt.user_id)
        plan = _Plan(rcpt, user.address if user is not None else rcpt.address)
        where = kv(user=plan.user_address, script=stored.name)
        try:
            script = self.compiled(stored.content)
            includes = await self._includes(rcpt.user_id, script)
            view = sieve.MessageView(
                raw, sieve.Envelope(sender, rcpt.address, auth), self._limits.body_bytes
            )
            outcome = await asyncio.to_thread(
                sieve.run,
                script,
                view,
                mailboxes=frozenset(boxes),
                includes=includes,
                limits=self._limits,
                now=lambda: now,
            )
        except (sieve.SieveError, sieve.RuntimeSieveError) as e:
            log.warning(
                "Sieve script failed, the message is kept in %s: %s", keep_box, e, extra=where
            )
            plan.stores.append((keep_box, frozenset(), False))
            return plan
        except StoreError:
            raise  # the caller answers "try again later"
        except Exception:  # a bug in the interpreter must not lose the message
            log.exception(
                "Sieve interpreter failed; the message is kept in %s", keep_box, extra=where
            )
            plan.stores.append((keep_box, frozenset(), False))
            return plan
        for action in outcome.actions:
            self._take(plan, action, boxes, keep_box)
        failed = [r for r in plan.redirects if not await self._can_redirect(r, where)]
        plan.redirects = [r for r in plan.redirects if r not in failed]
        if failed and not plan.redirects and not plan.stores and plan.reject is None:
            plan.stores.append((keep_box, frozenset(), False))  # never lose the message
        if plan.redirects and _looped(raw, plan.user_address):
            log.warning(
                "Sieve redirect skipped: the message has looped; kept in %s", keep_box, extra=where
            )
            plan.redirects = []
            if not plan.stores:
                plan.stores.append((keep_box, frozenset(), False))
        return plan

    async def _can_redirect(self, redirect: a.Redirect, where: dict[str, object]) -> bool:
        """Whether the target can take the copy now; if not the message is kept instead."""
        try:
            address = parse_address(redirect.address)
        except AddressError:
            log.warning("Sieve redirect to %r: not an address", redirect.address, extra=where)
            return False
        resolution = await resolve_recipient(self._store, address)
        if resolution.outcome is Outcome.NOT_LOCAL:
            remote: tuple[str, ...] = (str(address),)
        elif resolution.accepted:
            remote = resolution.remote
        else:
            log.warning("Sieve redirect to %s: %s", address, resolution.reason, extra=where)
            return False
        for target in remote:
            refusal = await self._outbound.check(target)
            if refusal is not None:
                log.warning("Sieve redirect to %s: %s", target, refusal.text, extra=where)
                return False
        return True

    def _take(self, plan: _Plan, action: a.Action, boxes: set[str], keep_box: str) -> None:
        match action:
            case a.Keep(flags=flags, implicit=implicit):
                plan.stores.append((keep_box if implicit else INBOX, flags, False))
            case a.FileInto(mailbox=name, flags=flags, create=create):
                name = INBOX if name.upper() == INBOX else name
                if name not in boxes and not create:
                    log.info(
                        "Sieve fileinto %r: no such folder, filed into INBOX",
                        name,
                        extra=kv(user=plan.user_address),
                    )
                    name = INBOX
                plan.stores.append((name, flags, create and name not in boxes))
            case a.Discard():
                log.info("Sieve script discarded the message", extra=kv(user=plan.user_address))
            case a.Redirect():
                plan.redirects.append(action)
            case a.Reject():
                plan.reject = action
            case a.Vacation():
                plan.vacation = action

    # --- delivering ---------------------------------------------------------------------------

    async def deliver(
        self,
        recipients: Sequence[LocalRecipient],
        raw: bytes,
        sender: str,
        now: datetime | None = None,
        *,
        refuse: bool = False,
        auth: str = "",
    ) -> Filtered:
        """Files ``raw`` for each recipient as their scripts say; durable on return.

        ``refuse``: the caller can still refuse the message (SMTP, port 25) and will when
        ``Filtered.refused`` is set; then nothing was stored or sent. ``auth``: the submitting
        user, for ``envelope "auth"`` (RFC 5228 §5.4).
        """
        when = now or self._clock()
        plans = [await self._plan(r, raw, sender, when, auth) for r in _unique(recipients)]
        rejects = [p.reject for p in plans if p.reject is not None]
        if refuse and plans and len(rejects) == len(plans):
            return Filtered([], refused=rejects[0].reason)  # RFC 5429 §2.1: refuse in SMTP
        appended = await self._append(plans, raw, when)
        for plan in plans:
            await self._after(plan, raw, sender, when)
        return Filtered(appended)

    async def deliver_notice(
        self, user_ids: Sequence[int], address: str, tag: str | None, raw: bytes
    ) -> None:
        """A notice the queue owes a local sender (``bounce.LocalDelivery``), through their
        scripts: from the null sender, so never rejected back nor answered (RFC 5429 §2.1,
        RFC 3834 §2)."""
        await self.deliver([LocalRecipient(u, address, tag) for u in user_ids], raw, "")

    async def _append(self, plans: list[_Plan], raw: bytes, when: datetime) -> list[Appended]:
        items: list[tuple[int, NewMessage]] = []
        for plan in plans:
            user_id = plan.recipient.user_id
            for name, flags, create in _merged(plan.stores):
                box_id = plan.inbox_id if name == INBOX else None
                if box_id is None:
                    box_id = await self._mailbox_id(user_id, name, create)
                if box_id is None:
                    continue  # the user is gone
                items.append((box_id, NewMessage(raw=raw, internal_date=when, flags=flags)))
        if not items:
            return []
        return await self._store.append(items)

    async def _mailbox_id(self, user_id: int, name: str, create: bool) -> int | None:
        """The folder to file into: made first when the script said ``:create``; INBOX when it
        was removed meanwhile; None when the user is gone."""
        box = await self._store.get_mailbox(user_id, name)
        if box is None and create:
            with contextlib.suppress(AlreadyExists):
                await self._store.create_mailbox(user_id, name)
                await self._store.set_subscribed(user_id, name, True)
            box = await self._store.get_mailbox(user_id, name)
        if box is None:  # removed meanwhile
            box = await self._store.get_mailbox(user_id, INBOX)
        return None if box is None else box.id

    async def _after(self, plan: _Plan, raw: bytes, sender: str, when: datetime) -> None:
        where = kv(user=plan.user_address)
        try:
            if plan.reject is not None:
                await self._bounce(plan, plan.reject, raw, sender)
            for redirect in plan.redirects:
                await self._redirect(plan, redirect.address, raw, sender)
            if plan.vacation is not None:
                await self._vacation(plan, plan.vacation, raw, sender, when)
        except (StoreError, QueueError) as e:
            log.warning("Sieve action not carried out: %s", e, extra=where)

    async def _bounce(self, plan: _Plan, reject: a.Reject, raw: bytes, sender: str) -> None:
        if not sender:
            log.info("Sieve reject of a bounce: discarded", extra=kv(user=plan.user_address))
            return  # RFC 5429 §2.1: never answer the null sender
        notice = dsn.Notice(
            hostname=self._hostname,
            sender=sender,
            recipients=(
                dsn.RecipientNotice(
                    plan.recipient.address,
                    dsn.Action.FAILED,
                    "5.7.1",
                    reason=f"the recipient's filter refused the message: {reject.reason}",
                ),
            ),
            original=raw,
            arrival=time.time(),
            ret="HDRS",
        )
        await self._notifier.send(sender, dsn.build(notice, time.time()))
        log.info("Sieve reject: bounce sent", extra=kv(user=plan.user_address, to=sender))

    async def _redirect(self, plan: _Plan, target: str, raw: bytes, sender: str) -> None:
        where = kv(user=plan.user_address, to=target)
        try:
            address = parse_address(target)
        except AddressError:
            log.warning("Sieve redirect skipped: not an address", extra=where)
            return
        copy = f"Delivered-To: {plan.user_address}\r\n".encode() + raw  # RFC 9228
        resolution = await resolve_recipient(self._store, address)
        remote = resolution.remote if resolution.accepted else ()
        if resolution.outcome is Outcome.NOT_LOCAL:
            remote = (str(address),)
        if resolution.user_ids:
            await deliver_local(self._store, resolution.user_ids, copy)
        if remote:
            rcpts = tuple(Recipient(r) for r in remote)
            await self._outbound.enqueue(Envelope(sender=sender, recipients=rcpts), copy)
        log.info("Sieve redirect", extra=where)

    async def _vacation(
        self, plan: _Plan, action: a.Vacation, raw: bytes, sender: str, when: datetime
    ) -> None:
        view = sieve.MessageView(raw, sieve.Envelope(sender, plan.recipient.address))
        own = [plan.user_address, plan.recipient.address, *action.addresses]
        why = vacation.refusal(view, own)
        where = kv(user=plan.user_address, to=sender or "<>")
        if why is not None:
            log.info("Sieve vacation: no answer, %s", why, extra=where)
            return
        key = vacation.memory_key(plan.recipient.user_id, action, sender)
        if await self._store.remembered(key) is not None:
            log.info("Sieve vacation: already answered this sender", extra=where)
            return  # RFC 5230 §4.1: once per sender per :days
        if action.from_address is not None and not vacation.is_own(action.from_address, own):
            # RFC 5230 §4.3: :from must not let a script send as someone else
            log.info("Sieve vacation: :from is not the user's address, not used", extra=where)
            action = replace(action, from_address=None)
        await self._store.remember(key, action.days * 86400.0)
        answer = vacation.reply(view, action, plan.user_address, self._hostname, when)
        await self._notifier.send(sender, answer)  # null envelope sender (RFC 5230 §5)
        log.info("Sieve vacation: answered", extra=where)


def _merged(
    stores: list[tuple[str, frozenset[str], bool]],
) -> list[tuple[str, frozenset[str], bool]]:
    """One copy per folder (RFC 5228 §2.10.3: keep and fileinto "INBOX" file once), with the
    flags of every action that filed it."""
    out: dict[str, tuple[frozenset[str], bool]] = {}
    for name, flags, create in stores:
        had, made = out.get(name, (frozenset(), False))
        out[name] = (had | flags, made or create)
    return [(name, flags, create) for name, (flags, create) in out.items()]


def _unique(recipients: Sequence[LocalRecipient]) -> list[LocalRecipient]:
    seen: dict[int, LocalRecipient] = {}
    for r in recipients:
        seen.setdefault(r.user_id, r)
    return list(seen.values())


def _looped(raw: bytes, user_address: str) -> bool:
    """The message passed this user's redirect before, or too many redirects (RFC 9228)."""
    marks = [v.strip().strip("<>").lower() for v in _field_values(raw, b"delivered-to")]
    return user_address.lower() in marks or len(marks) >= MAX_DELIVERED_TO


def _field_values(raw: bytes, name: bytes) -> list[str]:
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end]
    prefix = name.lower() + b":"
    return [
        line[len(prefix) :].decode("utf-8", "replace")
        for line in head.split(b"\r\n")
        if line.lower().startswith(prefix)
    ]
