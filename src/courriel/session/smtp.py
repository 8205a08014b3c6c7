"""The SMTP session: what courriel answers to each event of the sans-IO core.

Theory of operation
-------------------
``SmtpSession.handle`` takes one event from ``courriel.wire.smtp.SmtpConnection`` and returns the
one reply the core then sends. The core does syntax, order and limits; the session decides
policy, in one of two modes chosen by the listener:

* ``Mode.SUBMISSION`` (587 with STARTTLS, 465 implicit TLS; RFC 6409, RFC 8314): AUTH is
  required before MAIL (530 5.7.0); the envelope sender and every From address must belong to
  the authenticated user (550 5.7.1); recipients in our domains are delivered at once, others
  are handed to the outbound ``Queue`` (which may refuse them at RCPT time); Date and
  Message-ID are added when missing (RFC 6409 §8). The local copies are DKIM-signed for the
  From domain (``sign``), as the queue signs the copy it relays.
* ``Mode.MX`` (25): mail is accepted only for our domains (554 5.7.1 relay denied otherwise,
  whatever routing trick the address holds); unknown users get 550 5.1.1; AUTH is not offered.
  With a ``checker``, the message is judged on SPF, DKIM, DMARC and ARC before it is stored
  (``courriel.session.smtp_inbound``, under each recipient domain's policy): refused (550
  5.7.1), deferred (451 4.7.0), or stored with an Authentication-Results field, in INBOX or in
  Junk. Aliases of our addresses that lead to other domains are forwarded through the queue,
  ARC-sealed for the alias's domain (``seal``, RFC 8617 §5.1).
  With ``junk`` (``[junk]``, ``courriel.session.smtp_junk``): a refusal found when the client
  connected (DNS blocklist, reverse DNS) or for its HELO answers each RCPT but the one to
  postmaster (RFC 5321 §4.5.1); greylisting answers RCPT too; and each local recipient's copy
  is scored and filed in INBOX or Junk.
  With ``filters`` (``courriel.queue.filtering``), the copies that do not go to Junk are filed
  by their recipients' Sieve scripts.

A transaction starts with an accepted MAIL: every RCPT and the message that follow belong to the
last accepted MAIL, because the core only lets them through in that state. Recipients are
resolved at RCPT time (aliases, plus-addresses, catch-all; quota checked then, 452 4.2.2), and
the message is stored for all local recipients with one ``Store.append`` call, then queued once
for all remote ones (one queue entry, named by the queue id of the Received field); the 250 is
only returned after both, so it acknowledges a durable message. A quota exceeded by the message
itself refuses the whole message (452 4.2.2) before anything is queued: one append is all or
nothing. Should the queue write fail after the local append, the client's retry delivers the
local copy twice -- a duplicate rather than a loss (RFC 5321 §6.1). The caller holds the
connection's transaction guard around ``handle`` for message events, so shutdown lets the
store write and its acknowledgement finish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import assert_never

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import MailAuthConfig
from courriel.junk.filter import Arrival
from courriel.logs import kv
from courriel.mail import delivery
from courriel.queue.filtering import Filters, LocalRecipient
from courriel.queue.local import deliver_local
from courriel.queue.outbound import Envelope, Queue, QueueError, Recipient
from courriel.queue.signer import Sealer, Signer, signed
from courriel.session import smtp_policy as policy
from courriel.session import urlauth
from courriel.session.smtp_auth import SmtpAuth
from courriel.session.smtp_inbound import (
    Checker,
    Placement,
    Recorder,
    deliver_junk,
    forward_sealed,
    judge,
    policies_for,
    recorder,
    refusal,
)
from courriel.session.smtp_junk import Copy, JunkServices, greylisted, scored_copies, store_copies
from courriel.store.base import MailEvents, OverQuota, Store, StoreError
from courriel.wire.smtp import Mode, Path, Reply, SmtpConnection
from courriel.wire.smtp import events as ev
from courriel.wire.smtp import replies as r

log = logging.getLogger("courriel.smtp")

Clock = Callable[[], datetime]

NULL_SENDER = Reply(
    550, "5.7.1", "you may only send as addresses you own: <> is reserved for bounces"
)


def _postmaster(path: Path) -> bool:
    """RFC 5321 §4.5.1: mail to postmaster is accepted even from a client refused otherwise,
    so a sender on a blocklist can still reach a person here."""
    return path.local_part.lower() == "postmaster"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _sieve_refusal(reason: str, queue_id: str) -> Reply:
    """RFC 5429 §2.1: a Sieve reject at SMTP time is a 550 carrying the script's reason."""
    text = " ".join(reason.split()).encode("ascii", "replace").decode("ascii")[:300]
    log.info("message refused by the recipient's Sieve script", extra=kv(id=queue_id))
    return Reply(550, "5.7.1", text or "refused by the recipient's filter")


@dataclass(frozen=True, slots=True)
class SessionServices:
    """The interfaces a session uses, shared by every session of one listener."""

    store: Store
    authenticator: Authenticator
    limiter: AuthLimiter
    queue: Queue
    hostname: str
    clock: Clock = _utc_now
    checker: Checker | None = None  # SPF, DKIM and DMARC on port 25; None: not checked
    sign: Signer | None = None  # DKIM for local copies of submitted mail (the From domain's)
    seal: Sealer | None = None  # ARC sets for what port 25 forwards (the alias domain's key)
    mailauth: MailAuthConfig = field(default_factory=MailAuthConfig)  # ``[mailauth]``
    events: MailEvents | None = None  # recent deliveries and refusals, for the web admin
    filters: Filters | None = None  # Sieve scripts and tag folders; None: straight to INBOX
    junk: JunkServices | None = None  # ``[junk]`` on port 25; None: no junk filtering


@dataclass(frozen=True, slots=True)
class TlsDetails:
    version: str
    cipher: str
    bits: int


class _Transaction:
    """The envelope being collected between MAIL and the end of the message."""

    __slots__ = ("forwarder", "params", "recipients", "remote", "sender", "user_ids")

    def __init__(self, event: ev.MailFrom) -> None:
        self.sender = "" if event.path is None else event.path.mailbox
        self.params = event.params
        self.user_ids: dict[int, LocalRecipient] = {}  # user -> the first RCPT that reached it
        self.remote: dict[str, Recipient] = {}
        self.recipients: list[str] = []  # every accepted address, in order
        self.forwarder = ""  # the domain of the first address whose alias leads elsewhere


class SmtpSession:
    def __init__(
        self, services: SessionServices, conn: SmtpConnection, mode: Mode, client_ip: str
    ) -> None:
        self._s = services
        self._conn = conn
        self._mode = mode
        self._ip = client_ip
        self._auth = SmtpAuth(services.authenticator, services.limiter, client_ip)
        self._helo = ""
        self._esmtp = False
        self._tls: TlsDetails | None = None
        self._tx: _Transaction | None = None
        # A connection-time refusal (blocklist, reverse DNS), answered to RCPT.
        self._refused: Reply | None = None
        self._helo_refused: Reply | None = None

    def refuse_client(self, text: Reply) -> None:
        """The connection checks refused the client: every RCPT but postmaster gets ``text``."""
        self._refused = text

    @property
    def user(self) -> str | None:
        """The authenticated user's address, if any."""
        return None if self._auth.user is None else self._auth.user.address

    def tls_started(self, details: TlsDetails | None) -> None:
        """TLS is up (implicit, or after STARTTLS): forget the plaintext session (RFC 3207 §4.2)."""
        self._tls = details
        self._helo = ""
        self._esmtp = False
        self._tx = None
        self._auth.reset()

    async def handle(self, event: ev.Event) -> Reply:
        match event:
            case ev.Ehlo(domain=domain):
                self._helo, self._esmtp, self._tx = domain, True, None
                self._check_helo(domain)
                return self._conn.ehlo_reply()
            case ev.Helo(domain=domain):
                self._helo, self._esmtp, self._tx = domain, False, None
                self._check_helo(domain)
                return self._conn.helo_reply()
            case ev.MailFrom():
                return await self._mail(event)
            case ev.RcptTo():
                return await self._rcpt(event)
            case ev.Data():
                return r.START_DATA
            case ev.MessageData(message=message) | ev.BdatLast(message=message):
                return await self._message(message)
            case ev.BdatChunk(size=size):
                return Reply(250, "2.0.0", f"{size} octets received")  # RFC 3030 §2
            case ev.BurlUrl(url=url):
                return await self._burl(url)
            case ev.Rset():
                self._tx = None
                return r.RESET_OK
            case ev.Noop():
                return r.NOOP_OK
            case ev.Quit():
                return Reply(221, "2.0.0", f"{self._s.hostname} closing the connection")
            case ev.Vrfy():
                return r.CANNOT_VRFY  # RFC 5321 §3.5.3: no address harvesting
            case ev.Help():
                return r.HELP
            case ev.StartTls():
                return r.READY_FOR_TLS  # RFC 3207 §4
            case ev.Auth(mechanism=mechanism, initial_response=initial):
                return await self._auth.start(mechanism, initial)
            case ev.AuthResponse(data=data):
                return await self._auth.step(data)
            case _:
                assert_never(event)

    async def _burl(self, url: str) -> Reply:
        """RFC 4468 §3: the content the URL names joins the message; the message store is
        ours, so it is read from the store directly (``session.urlauth``), as the submission
        server acting for the authenticated user ("submit+user" URLs)."""
        now = self._s.clock()
        data = await urlauth.fetch(self._s.store, url, user=self.user, submit=True, now=now)
        if data is None:
            log.info("BURL refused: the URL does not resolve", extra=kv(user=self.user))
            return r.BURL_UNRESOLVED  # RFC 4468 §6 (5.6.6)
        answer = self._conn.burl_data(data)
        if isinstance(answer, Reply):
            return answer
        return await self.handle(answer)

    # --- envelope -----------------------------------------------------------------------------

    async def _mail(self, event: ev.MailFrom) -> Reply:
        self._tx = None
        if self._mode is Mode.SUBMISSION:
            user = self._auth.user
            if user is None:
                return r.AUTH_REQUIRED  # RFC 6409 §4.3, RFC 4954 §6: 530 5.7.0
            if event.path is None:
                return NULL_SENDER
            try:
                if not await policy.owns(self._s.store, user, event.path.mailbox):
                    return policy.NOT_OWNER  # RFC 6409 §6.1
            except StoreError:
                return policy.TEMPORARY
        self._tx = _Transaction(event)
        return r.SENDER_OK

    async def _rcpt(self, event: ev.RcptTo) -> Reply:
        tx = self._tx
        assert tx is not None  # the core only passes RCPT after an accepted MAIL
        refused = self._refused or self._helo_refused
        if self._mode is Mode.MX and refused is not None and not _postmaster(event.path):
            return refused  # the reason was logged when it was found
        try:
            verdict = await policy.classify_recipient(
                self._s.store,
                self._s.queue,
                event.path,
                may_relay=self._mode is Mode.SUBMISSION and self._auth.user is not None,
                hostname=self._s.hostname,
                declared_size=tx.params.size or 0,
            )
        except StoreError:
            return policy.TEMPORARY  # RFC 3463 4.3.0
        if verdict.reply is not None:
            self._event("refused", tx.sender, event.path.mailbox, verdict.reply)
            return verdict.reply
        if self._mode is Mode.MX and self._s.junk is not None and verdict.user_ids:
            grey = await greylisted(
                self._s.store, self._s.junk.cfg, self._ip, tx.sender, verdict.address
            )
            if grey is not None:
                return grey
        for user_id in verdict.user_ids:
            tx.user_ids.setdefault(user_id, LocalRecipient(user_id, verdict.address, verdict.tag))
        if verdict.remote and not tx.forwarder:
            tx.forwarder = verdict.address.rpartition("@")[2].lower()
        params = event.params
        notify = None if params.notify is None else tuple(sorted(n.value for n in params.notify))
        orcpt = None if params.orcpt is None else f"{params.orcpt_type};{params.orcpt}"
        for address in verdict.remote:
            tx.remote[address] = Recipient(address, notify, orcpt)  # RFC 3461 §4
        tx.recipients.append(verdict.address)
        return r.RECIPIENT_OK

    # --- the message --------------------------------------------------------------------------

    async def _message(self, message: bytes) -> Reply:
        tx, self._tx = self._tx, None
        assert tx is not None
        now = self._s.clock()
        if self._mode is Mode.SUBMISSION:
            refusal = await self._check_from(message)
            if refusal is not None:
                return refusal
            message = delivery.submission_fixups(message, self._s.hostname, now)
        placed = await self._judge(tx, message)
        if isinstance(placed, Reply):
            self._event("refused", tx.sender, ", ".join(tx.recipients), placed)
            return placed
        message = placed.message
        queue_id = delivery.new_queue_id()
        try:
            if tx.user_ids:
                trace = delivery.trace_headers(
                    self._trace(queue_id), tx.recipients, now, return_path=tx.sender
                )
                local = message
                if self._mode is Mode.SUBMISSION and self._s.sign is not None:
                    local = await signed(self._s.sign, message)  # as the queue signs its copy
                junk = self._s.junk.filter if self._s.junk is not None else None
                if self._mode is Mode.MX and junk is not None:
                    arrival = Arrival(
                        self._ip, self._helo, tx.sender, tuple(tx.recipients), self._s.hostname
                    )
                    users = {u: _domain(r.address) for u, r in tx.user_ids.items()}
                    copies = await scored_copies(junk, users, trace, placed, arrival, now)
                    refused = await self._deliver_copies(tx, copies, now)
                else:
                    refused = await self._deliver(tx, placed, trace + local, now)
                if refused is not None:
                    return _sieve_refusal(refused, queue_id)
            if tx.remote:
                received = delivery.received_field(self._trace(queue_id), tx.recipients, now)
                out = received + message
                if self._mode is Mode.MX:  # an alias forwards: RFC 8617 §5.1
                    out = await forward_sealed(self._s.seal, placed, tx.forwarder, out)
                await self._s.queue.enqueue(self._envelope(tx, queue_id), out)
        except OverQuota:
            return await policy.over_quota_reply(self._s.store, tuple(tx.user_ids), len(message))
        except StoreError as e:
            log.error("message not stored: %s", e, extra=kv(id=queue_id))
            return policy.TEMPORARY  # RFC 3463 4.3.0: nothing was stored
        except QueueError as e:
            code = 451 if e.refusal.temporary else 554
            return Reply(code, e.refusal.enhanced, e.refusal.text)
        if placed.verdict is not None and self._s.mailauth.dmarc_reports:
            record = self._recorder(tx)
            await record(placed.verdict, placed.disposition, placed.reasons)
        log.info(
            "message accepted",
            extra=kv(id=queue_id, sender=tx.sender, rcpts=len(tx.recipients), size=len(message)),
        )
        accepted = Reply(250, "2.0.0", f"message accepted as {queue_id}")
        if tx.user_ids:
            self._event("delivered", tx.sender, ", ".join(tx.recipients), accepted)
        return accepted

    async def _deliver(
        self, tx: _Transaction, placed: Placement, raw: bytes, now: datetime
    ) -> str | None:
        """``raw`` for each local recipient: to Junk where the recipient domain's policy sends
        it (``Placement.to_junk``), the rest through their Sieve scripts (INBOX without any).
        Returns the scripts' reason when every recipient rejects and nothing was stored."""
        junked = [u for u, r in tx.user_ids.items() if placed.to_junk(_domain(r.address))]
        kept = [r for u, r in tx.user_ids.items() if u not in junked]
        refused = None
        if kept and self._s.filters is None:
            await deliver_local(self._s.store, [r.user_id for r in kept], raw, now)
        elif kept:
            assert self._s.filters is not None
            alone = not junked and not tx.remote  # RFC 5429 §2.1: nothing stored for anyone
            filtered = await self._s.filters.deliver(
                kept, raw, tx.sender, now, refuse=alone, auth=self.user or ""
            )
            refused = filtered.refused
        if junked and refused is None:
            await deliver_junk(self._s.store, junked, raw, now)
        return refused

    async def _deliver_copies(
        self, tx: _Transaction, copies: list[Copy], now: datetime
    ) -> str | None:
        """Scored copies: those for Junk are stored there; the others go through their
        recipients' Sieve scripts, which see the X-Spam fields (to INBOX without Sieve).
        Returns the scripts' reason when every recipient rejects and nothing was stored."""
        filters = self._s.filters
        if filters is None:
            await store_copies(self._s.store, copies, now)
            return None
        junked = [c for c in copies if c.score.junk]
        kept: dict[bytes, list[LocalRecipient]] = {}
        for c in copies:
            if not c.score.junk:
                kept.setdefault(c.raw, []).append(tx.user_ids[c.user_id])
        # RFC 5429 §2.1: refusing in SMTP is possible only while nothing is stored for anyone.
        alone = not junked and len(kept) == 1 and not tx.remote
        for raw, recipients in kept.items():
            filtered = await filters.deliver(
                recipients, raw, tx.sender, now, refuse=alone, auth=self.user or ""
            )
            if filtered.refused is not None:
                return filtered.refused
        await store_copies(self._s.store, junked, now)
        return None

    def _event(self, kind: str, sender: str, recipient: str, reply: Reply) -> None:
        if self._s.events is not None:
            self._s.events.record(
                kind, sender, recipient, f"{reply.code} {reply.enhanced} {reply.text}"
            )

    async def _judge(self, tx: _Transaction, message: bytes) -> Reply | Placement:
        """Port 25: SPF, DKIM and DMARC decide (``smtp_inbound``); elsewhere: INBOX as is."""
        checker = self._s.checker
        if self._mode is not Mode.MX or checker is None:
            return Placement(message)
        try:
            recipients = [a.rpartition("@")[2].lower() for a in tx.recipients]
            domains = await policies_for(self._s.store, recipients)
        except StoreError:
            return policy.TEMPORARY
        record = self._recorder(tx) if self._s.mailauth.dmarc_reports else None
        return await judge(
            checker,
            self._s.mailauth,
            ip=self._ip,
            helo=self._helo,
            mail_from=tx.sender,
            message=message,
            domains=domains,
            record=record,
        )

    def _check_helo(self, name: str) -> None:
        junk = self._s.junk
        if self._mode is not Mode.MX or junk is None:
            return
        found = junk.checks.helo(name)
        self._helo_refused = None
        if found is not None:
            log.info("client refused: %s", found.text, extra=kv(ip=self._ip, helo=name))
            self._helo_refused = refusal(found.code, found.enhanced, found.text)

    def _recorder(self, tx: _Transaction) -> Recorder:
        """Writes the DMARC evaluation of this message for the aggregate report."""
        envelope_to = tx.recipients[0].rpartition("@")[2].lower()
        return recorder(self._s.store, ip=self._ip, helo=self._helo, envelope_to=envelope_to)

    async def _check_from(self, message: bytes) -> Reply | None:
        """RFC 6409 §6.1: the From addresses must be the authenticated user's."""
        user = self._auth.user
        assert user is not None  # MAIL needs AUTH in submission mode
        addresses = delivery.from_addresses(message)
        if not addresses:
            return policy.NO_FROM
        try:
            for address in addresses:
                if not await policy.owns(self._s.store, user, address):
                    return policy.FROM_NOT_OWNER
        except StoreError:
            return policy.TEMPORARY
        return None

    def _trace(self, queue_id: str) -> delivery.TraceInfo:
        tls = self._tls
        return delivery.TraceInfo(
            helo=self._helo,
            client_ip=self._ip,
            hostname=self._s.hostname,
            esmtp=self._esmtp,
            tls_version=tls.version if tls else None,
            tls_cipher=tls.cipher if tls else None,
            tls_bits=tls.bits if tls else 0,
            authenticated=self._auth.user is not None,
            queue_id=queue_id,
        )

    def _envelope(self, tx: _Transaction, queue_id: str) -> Envelope:
        p = tx.params
        return Envelope(
            sender=tx.sender,
            recipients=tuple(tx.remote.values()),
            ret=p.ret.value if p.ret else None,
            envid=p.envid,
            smtputf8=p.smtputf8,
            body=p.body.value if p.body else None,
            authenticated_as=self.user,
            queue_id=queue_id,
        )
