"""Sending the notifications the queue owes: bounces, delay warnings, success reports.

Theory of operation
-------------------
``notices_for`` turns the recipients of an entry that owe a report (``QueuedRecipient.report``)
into one ``courriel.mail.dsn.Notice``; ``Notifier.send`` stores the built message where the
envelope sender will read it:

* a sender in one of our domains gets it in their INBOX at once (``deliver_local``, one durable
  append, with ``Return-Path: <>``);
* any other sender, or the remote targets of an alias, get it through the queue itself, as a
  new entry with the null reverse-path and NOTIFY=NEVER (RFC 5321 §4.5.5, RFC 3461 §4.1), so a
  notice that cannot be delivered is dropped rather than answered by another one;
* a null sender never gets one (the caller checks): a bounce of a bounce would loop.

Every notice is DKIM-signed before it is stored (``NoticeSigner``), for the server's own
domain: the hosted domain that is the host name or its nearest parent (``mail.example.org``
signs as ``example.org``, which DMARC's relaxed alignment accepts for a From of
``MAILER-DAEMON@mail.example.org``), else the first hosted domain by name; nothing when that
domain has no active key. A signature that fails to be made leaves the notice unsigned; keys
that cannot be read leave it owed, to be sent again.

A recipient that failed with a temporary status (4.x.x) failed because time ran out: the notice
says "gave up after N days" and reports Status 5.4.7 (RFC 3463: delivery time expired), with the
last reply as its Diagnostic-Code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from courriel.accounts.resolve import Outcome, resolve_recipient
from courriel.config import QueueConfig
from courriel.mail import delivery, dsn
from courriel.mail.address import AddressError, parse_address
from courriel.mail.auth.dkim import sign
from courriel.mail.auth.inbound import from_domains
from courriel.queue.local import deliver_local
from courriel.queue.outbound import Envelope, Queue, Recipient
from courriel.queue.signer import DkimSigner, Signer, signed
from courriel.store.base import Store
from courriel.store.queue import QueuedMessage, QueuedRecipient, RecipientState, Report

log = logging.getLogger("courriel.queue")

EXPIRED = "5.4.7"  # RFC 3463: delivery time expired


def recipient_notice(
    entry: QueuedMessage, r: QueuedRecipient, cfg: QueueConfig
) -> dsn.RecipientNotice:
    expired = r.state is RecipientState.FAILED and r.enhanced.startswith("4")
    if r.report is Report.DELIVERED:
        action, status = dsn.Action.DELIVERED, r.enhanced or "2.0.0"
    elif r.report is Report.DELAYED:
        action, status = dsn.Action.DELAYED, r.enhanced or "4.0.0"
    else:
        action, status = dsn.Action.FAILED, EXPIRED if expired else (r.enhanced or "5.0.0")
    return dsn.RecipientNotice(
        address=r.address,
        action=action,
        status=status,
        reason=r.reason,
        code=r.code,
        remote_host=r.remote_host,
        orcpt=r.orcpt,
        last_attempt=r.last_attempt,
        expired_after=((r.last_attempt or entry.created) - entry.created) if expired else None,
        retry_until=entry.created + cfg.give_up_seconds if action is dsn.Action.DELAYED else None,
    )


def notice_for(
    entry: QueuedMessage,
    message: bytes,
    owed: Sequence[QueuedRecipient],
    hostname: str,
    cfg: QueueConfig,
) -> dsn.Notice:
    return dsn.Notice(
        hostname=hostname,
        sender=entry.sender,
        recipients=tuple(recipient_notice(entry, r, cfg) for r in owed),
        original=message,
        arrival=entry.created,
        queue_id=entry.id,
        envid=entry.envid,
        ret=entry.ret,
        smtputf8=entry.smtputf8,
    )


def signing_domain(hostname: str, hosted: Sequence[str]) -> str | None:
    """The hosted domain that is ``hostname`` or its nearest parent, else the first by name."""
    labels = hostname.lower().rstrip(".").split(".")
    names = set(hosted)
    for i in range(len(labels)):
        if ".".join(labels[i:]) in names:
            return ".".join(labels[i:])
    return min(names) if names else None


class NoticeSigner:
    """DKIM-Signature fields for a notice, for the server's own domain (module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._keys = DkimSigner(store)

    async def sign(self, raw: bytes) -> bytes:
        domains = from_domains(raw)  # MAILER-DAEMON@hostname
        if len(domains) != 1:
            return b""
        hosted = [d.name for d in await self._store.list_domains()]
        domain = signing_domain(domains[0], hosted)
        keys = [] if domain is None else await self._keys.keys_for(domain)
        if not keys:
            return b""
        return await asyncio.to_thread(sign, raw, keys)


# Delivers a notice to local users: (user ids, the address, its +tag, the message). The queue
# worker passes ``courriel.queue.filtering.Filters.deliver_notice`` so that notices meet the
# users' Sieve scripts; the default is plain ``deliver_local`` into INBOX.
LocalDelivery = Callable[[Sequence[int], str, str | None, bytes], Awaitable[object]]


class Notifier:
    """Stores a built notice for its recipient: locally, or through the queue."""

    def __init__(
        self,
        store: Store,
        queue: Queue,
        *,
        sign: Signer | None = None,
        local: LocalDelivery | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._sign = sign or NoticeSigner(store).sign
        self._local = local or self._inbox

    async def _inbox(
        self, user_ids: Sequence[int], address: str, tag: str | None, raw: bytes
    ) -> None:
        await deliver_local(self._store, user_ids, raw)

    async def send(self, to: str, raw: bytes) -> None:
        """Durable on return; raises ``StoreError`` (the caller keeps the report owed)."""
        try:
            address = parse_address(to)
        except AddressError:
            log.warning("notice dropped: the sender address %r is not usable", to)
            return
        resolution = await resolve_recipient(self._store, address)
        if resolution.outcome is Outcome.NOT_LOCAL:
            remote: tuple[str, ...] = (str(address),)
        elif resolution.accepted:
            remote = resolution.remote
        else:
            log.warning("notice dropped: %s", resolution.reason or "no such local user")
            return
        raw = await signed(self._sign, raw)  # StoreError: the notice stays owed
        if resolution.user_ids:
            local = delivery.return_path_field("") + raw  # RFC 5321 §4.4: null reverse-path
            await self._local(resolution.user_ids, str(address), resolution.tag, local)
        if remote:
            # NOTIFY=NEVER: a notice that cannot be delivered is not answered by another.
            rcpts = tuple(Recipient(a, notify=()) for a in remote)
            await self._queue.enqueue(Envelope(sender="", recipients=rcpts), raw)
