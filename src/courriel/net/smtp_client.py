"""``SmtpTransport``: carries one message to one destination domain (``queue.transport``).

Theory of operation
-------------------
``deliver(domain, message)``:

1. Where to: the smarthost when one is configured (no MX lookup), else the domain's mail hosts
   in RFC 5321 §5.1 order (``DnsResolver.mail_hosts``). A permanent DNS answer (NXDOMAIN, null
   MX) fails every recipient at once; a temporary one defers them.
2. TLS per host (``HostTls``): DANE when the host's TLSA records came back DNSSEC-validated,
   else ``VERIFY`` when the domain's MTA-STS policy is ``enforce`` (and hosts its policy does
   not list are skipped) or the message asks for REQUIRETLS, else opportunistic.
3. Each host, each of its addresses (IPv6 first), until one server takes the transaction:
   an idle pooled connection to it if there is one (replaced by a fresh one if the server
   dropped it meanwhile), else a new session. A host
   that cannot be used (no answer, refused greeting, TLS failure, a 4xx to MAIL) is noted and
   the next is tried; with opportunistic TLS a failed handshake is retried once in clear.
4. One transaction carries every recipient (pipelined when offered); recipients answered
   452 4.5.3 "too many recipients" go in a further transaction on the same connection, as long
   as the last one settled somebody else (RFC 5321 §4.5.3.1.10).
5. Each recipient's ``Outcome`` quotes the reply that decided it. If no server took the
   message, every recipient gets the reasons of every host tried, temporary unless all of them
   were permanent.

Limits: one semaphore for all deliveries (``max_connections``) and one per destination
(``max_per_destination``), held while a connection is in use; idle pooled connections do not
hold them. A message rate per destination (``net/rate_limit.py``), when set, is waited for
before those, up to ``rate_wait_seconds``; a longer wait defers the message instead.
``deliver`` never raises: an unexpected exception is logged with its trace and becomes a
temporary outcome, so one bug cannot take the queue worker down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from courriel.config import Config, ConfigError
from courriel.logs import kv
from courriel.mail.downgrade import to_seven_bit
from courriel.mail.mtasts import Mode, Policy
from courriel.net import dane
from courriel.net.mtasts import MtaSts
from courriel.net.outbound_tls import CLEAR, OPPORTUNISTIC, Contexts, HostTls, TlsLevel
from courriel.net.rate_limit import Rates
from courriel.net.resolver import DnsFailure, DnsResolver, MailHost, a_label
from courriel.net.smtp_conn import (
    Connection,
    HostFailure,
    Login,
    Pool,
    Target,
    Timeouts,
    describe,
    open_session,
)
from courriel.queue.transport import OutboundMessage, Outcome, Status
from courriel.wire.smtp.client import Refusal, refusal, seven_bit
from courriel.wire.smtp.client_commands import ClientEnvelope, RecipientSpec
from courriel.wire.smtp.replies import Reply

log = logging.getLogger("courriel.relay")


@dataclass(frozen=True, slots=True)
class Smarthost:
    host: str
    port: int = 587
    tls: str = "starttls"  # "starttls" | "tls" | "none"
    login: Login | None = None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    helo_name: str
    port: int = 25  # of the MX hosts; tests run servers elsewhere
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_connections: int = 100
    max_per_destination: int = 20  # Postfix's default_destination_concurrency_limit
    max_messages_per_minute: int = 0  # per destination; 0 = no limit
    rate_wait_seconds: float = 60.0  # a longer wait for the rate defers the message
    idle_seconds: float = 5.0
    reuse_seconds: float = 300.0
    ca_file: str | None = None  # a private CA trusted besides the system's
    smarthost: Smarthost | None = None
    dane: bool = True


@dataclass
class _Destination:
    limit: asyncio.Semaphore
    users: int = 0


class _Unsent(Exception):  # noqa: N818 - control flow: this server did not take the message
    pass


class SmtpTransport:
    """The ``Transport`` of the relay queue over SMTP; see the module docstring."""

    def __init__(
        self, settings: ClientSettings, dns: DnsResolver, mta_sts: MtaSts | None = None
    ) -> None:
        self.settings = settings
        self._dns = dns
        self._mta_sts = mta_sts
        self._contexts = Contexts(settings.ca_file)
        self.pool = Pool(settings.idle_seconds, settings.reuse_seconds)
        self._global = asyncio.Semaphore(settings.max_connections)
        self._per_destination: dict[str, _Destination] = {}
        self._rates = Rates(settings.max_messages_per_minute, settings.rate_wait_seconds)

    async def close(self) -> None:
        await self.pool.close()

    async def deliver(self, domain: str, message: OutboundMessage) -> Sequence[Outcome]:
        try:
            outcomes = await self._deliver(domain, message)
        except Exception as e:  # a bug must defer the mail, not kill the worker
            log.exception("relay failed unexpectedly", extra=kv(domain=domain))
            return _all(
                message, Status.TEMPORARY, f"courriel failed while delivering: {e!r}", "4.3.0"
            )
        for o in outcomes:
            log.info(
                "relay outcome",
                extra=kv(
                    queue_id=message.queue_id,
                    rcpt=o.recipient,
                    status=o.status.value,
                    host=o.remote_host,
                    code=o.code,
                    enhanced=o.enhanced,
                    text=o.text,
                ),
            )
        return outcomes

    async def _deliver(self, domain: str, message: OutboundMessage) -> Sequence[Outcome]:
        if not message.recipients:
            return []
        try:
            hosts, policy = await self._routes(domain, message.requiretls)
        except DnsFailure as e:
            status = Status.TEMPORARY if e.temporary else Status.PERMANENT
            return _all(message, status, e.text, e.enhanced)
        outcomes: list[Outcome | None] = [None] * len(message.recipients)
        failures: list[HostFailure] = []
        key = self.settings.smarthost.host if self.settings.smarthost else domain
        wait = self._rates.reserve(key)
        if wait is None:
            rate = f"{self._rates.per_minute} messages a minute"
            text = f"rate limit for {key} reached ({rate}), retrying"
            return _all(message, Status.TEMPORARY, text, "4.4.5")  # RFC 3463: congestion
        await asyncio.sleep(wait)
        async with self._slot(key):
            for host in hosts:
                try:
                    await self._try_host(host, policy, domain, message, outcomes, failures)
                    return [
                        o
                        or Outcome(r.address, Status.TEMPORARY, "no reply was read", None, "4.4.2")
                        for o, r in zip(outcomes, message.recipients, strict=True)
                    ]
                except _Unsent:
                    continue
        if not failures:
            failures.append(HostFailure(f"no mail server of {domain} could be tried"))
        permanent = all(not f.temporary for f in failures)
        text = "; ".join(dict.fromkeys(f.text for f in failures))
        status = Status.PERMANENT if permanent else Status.TEMPORARY
        reply = next((f.reply for f in reversed(failures) if f.reply is not None), None)
        default = "5.4.4" if permanent else "4.4.1"
        return [
            o
            or Outcome(
                r.address,
                status,
                text,
                reply.code if reply else None,
                (reply.enhanced if reply else "") or default,
            )
            for o, r in zip(outcomes, message.recipients, strict=True)
        ]

    @contextlib.asynccontextmanager
    async def _slot(self, key: str) -> AsyncIterator[None]:
        """One of ``key``'s connections and one of all; the per-key entry goes when unused."""
        entry = self._per_destination.get(key)
        if entry is None:
            limit = asyncio.Semaphore(self.settings.max_per_destination)
            entry = self._per_destination[key] = _Destination(limit)
        entry.users += 1  # so the dictionary keeps only the destinations in use
        try:
            async with entry.limit, self._global:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._per_destination[key]

    async def _routes(self, domain: str, requiretls: bool) -> tuple[list[MailHost], Policy | None]:
        """The hosts to try in order and the MTA-STS policy; raises ``DnsFailure``."""
        smarthost = self.settings.smarthost
        if smarthost is not None:
            return [MailHost(smarthost.host, 0)], None
        hosts = await self._dns.mail_hosts(domain)
        policy = await self._mta_sts.policy(domain) if self._mta_sts else None
        if policy is not None and policy.mode is Mode.ENFORCE:
            allowed = [h for h in hosts if policy.allows(h.name)]
            if not allowed:
                names = ", ".join(h.name for h in hosts)
                raise DnsFailure(
                    f"the MTA-STS policy of {domain} lists none of its mail servers ({names})",
                    temporary=True,
                    enhanced="4.7.5",  # RFC 3463: cryptographic (here: policy) failure
                )
            hosts = allowed  # RFC 8461 §4.2
        enforced = policy is not None and policy.mode is Mode.ENFORCE
        if requiretls and not enforced and not all(h.authenticated for h in hosts):
            raise DnsFailure(  # RFC 8689 §4.2.1: the MX must be DNSSEC- or MTA-STS-validated
                f"the sender asked for REQUIRETLS and the mail servers of {domain} are "
                "confirmed neither by DNSSEC nor by an MTA-STS policy",
                temporary=False,
                enhanced="5.7.30",
            )
        return hosts, policy

    async def _host_tls(
        self, mail_host: MailHost, policy: Policy | None, domain: str, message: OutboundMessage
    ) -> HostTls:
        host = mail_host.name
        smarthost = self.settings.smarthost
        if smarthost is not None:
            if smarthost.tls == "none":
                return CLEAR
            return HostTls(TlsLevel.VERIFY, f"the smarthost setting for {smarthost.host}")
        if self.settings.dane:
            try:
                records, secure = await self._dns.tlsa(f"_25._tcp.{host}")
            except DnsFailure as e:
                if mail_host.authenticated:
                    # RFC 7672 §2.2: the MX answer was validated, so the zone is signed and a
                    # failing TLSA lookup may be a forged or stripped answer: not this host.
                    raise DnsFailure(
                        f"the TLSA records of {host} could not be validated ({e.text}); "
                        "not delivering without DANE",
                        temporary=True,
                    ) from e
                # Without DNSSEC knowledge of the host's zone a failing TLSA lookup cannot be
                # told from a zone that never had one (many old servers fail the unknown type);
                # delivery goes on with the TLS the rest of the policy asks for.
                log.info("tlsa lookup failed", extra=kv(host=host, reason=e.text))
                records, secure = [], False
            if secure and records:
                usable = tuple(dane.usable(records))
                return HostTls(TlsLevel.DANE, f"the DANE (TLSA) records of {host}", usable)
        if policy is not None and policy.mode is Mode.ENFORCE:
            return HostTls(TlsLevel.VERIFY, f"the MTA-STS policy of {domain}")
        if message.requiretls:
            return HostTls(TlsLevel.VERIFY, "the sender's REQUIRETLS")  # RFC 8689 §4.2
        return OPPORTUNISTIC

    async def _targets(
        self, host: MailHost, policy: Policy | None, domain: str, message: OutboundMessage
    ) -> list[Target]:
        tls = await self._host_tls(host, policy, domain, message)
        smarthost = self.settings.smarthost
        addresses = await self._dns.addresses(host.name)
        if smarthost is not None:
            return [
                Target(
                    host.name,
                    a,
                    smarthost.port,
                    tls,
                    implicit_tls=smarthost.tls == "tls",
                    login=smarthost.login,
                )
                for a in addresses
            ]
        return [Target(host.name, a, self.settings.port, tls) for a in addresses]

    async def _try_host(
        self,
        host: MailHost,
        policy: Policy | None,
        domain: str,
        message: OutboundMessage,
        outcomes: list[Outcome | None],
        failures: list[HostFailure],
    ) -> None:
        """Fills ``outcomes`` through one of ``host``'s addresses; raises ``_Unsent``."""
        try:
            targets = await self._targets(host, policy, domain, message)
        except DnsFailure as e:
            failures.append(HostFailure(e.text, temporary=e.temporary))
            raise _Unsent from None
        for target in targets:
            if await self._try_target(target, message, outcomes, failures):
                return
        raise _Unsent

    async def _try_target(
        self,
        target: Target,
        message: OutboundMessage,
        outcomes: list[Outcome | None],
        failures: list[HostFailure],
    ) -> bool:
        """Whether ``target`` decided the recipients; a failure is added to ``failures``."""
        while True:
            try:
                conn = await self._session(target)
            except HostFailure as f:
                failures.append(f)
                return False
            try:
                await self._send(conn, message, outcomes)
                return True
            except HostFailure as f:
                if f.after_data:
                    for i, o in enumerate(outcomes):
                        if o is None:
                            address = message.recipients[i].address
                            outcomes[i] = Outcome(
                                address, Status.TEMPORARY, f.text, None, "4.4.2", target.label
                            )
                    return True
                if not (conn.reused and f.at_start):
                    failures.append(f)
                    return False
                # A kept connection the server had closed meanwhile: open a fresh one.

    async def _session(self, target: Target) -> Connection:
        settings = self.settings
        conn = await self.pool.get(target)
        if conn is not None:
            return conn
        timeouts = settings.timeouts
        try:
            conn = await open_session(target, settings.helo_name, timeouts, self._contexts)
        except HostFailure as f:
            if not (f.tls_failed and target.tls.level is TlsLevel.MAY):
                raise
            log.info("tls failed, retrying in clear", extra=kv(host=target.label, reason=f.text))
            clear = replace(target, tls=CLEAR)
            conn = await open_session(clear, settings.helo_name, timeouts, self._contexts)
        self.pool.opened += 1
        return conn

    async def _send(
        self, conn: Connection, message: OutboundMessage, outcomes: list[Outcome | None]
    ) -> None:
        """Runs transactions until every recipient is decided; raises ``HostFailure`` when
        this server did not take the message (the next one is tried)."""
        label = conn.target.label
        todo = list(range(len(message.recipients)))
        envelope = _fitted(_envelope(message), conn)
        if isinstance(envelope, Refusal):  # this server cannot take it: neither will it later
            for i in todo:
                address = message.recipients[i].address
                why = Outcome(address, Status.PERMANENT, envelope.text, None, envelope.enhanced)
                outcomes[i] = replace(why, remote_host=label)
            self.pool.put(conn)
            return
        while todo:
            first = len(todo) == len(message.recipients)
            results = await self._transaction(conn, envelope, todo, first=first)
            again = [i for i, r in zip(todo, results, strict=True) if _too_many(r)]
            for i, reply in zip(todo, results, strict=True):
                if i not in again or len(again) == len(todo):
                    outcomes[i] = _outcome(message.recipients[i].address, reply, label)
            if len(again) == len(todo):
                break
            todo = again  # RFC 5321 §4.5.3.1.10: the rest in another transaction
        self.pool.put(conn)

    async def _transaction(
        self, conn: Connection, envelope: ClientEnvelope, todo: list[int], *, first: bool
    ) -> list[Reply | None]:
        part = replace(envelope, recipients=tuple(envelope.recipients[i] for i in todo))
        timeouts = conn.timeouts
        awaiting = "MAIL"
        try:
            await conn.write(conn.core.begin(part), timeouts.command)
            tx = conn.core.transaction
            assert tx is not None
            while not tx.done:
                awaiting = tx.awaiting
                limit = {"DATA": timeouts.data_init, "END": timeouts.data_end}.get(
                    awaiting, timeouts.command
                )
                reply = await conn.reply(limit)
                if first and awaiting == "MAIL" and reply.code >= 400 and reply.code < 500:
                    raise HostFailure(
                        f"{conn.target.label} refused the sender for now: {describe(reply)}",
                        reply=reply,
                    )  # another MX may take it
                await conn.write(conn.core.receive(reply), timeouts.data_block)
        except HostFailure as f:
            self.pool.discard(conn)
            # After the end of data the server may have taken the message (the window no MTA
            # can close, RFC 1047): trying another MX now would more likely send it twice.
            f.after_data = awaiting == "END"
            f.at_start = first and awaiting == "MAIL"
            raise
        return list(tx.results)


def from_config(cfg: Config) -> SmtpTransport:
    """The transport ``[dns]`` and ``[relay]`` describe; raises ``ConfigError`` for a
    smarthost password file that cannot be read."""
    relay = cfg.relay
    dns = DnsResolver(cfg.dns.nameservers, timeout=cfg.dns.timeout_seconds)
    smarthost = None
    if relay.smarthost:
        host, _, port = relay.smarthost.rpartition(":")
        login = None
        if relay.smarthost_user:
            path = cfg.resolve(relay.smarthost_password_file)
            try:
                password = path.read_text().splitlines()[0]
            except (OSError, IndexError) as e:
                raise ConfigError(f"[relay] smarthost_password_file: cannot read {path}") from e
            login = Login(relay.smarthost_user, password)
        smarthost = Smarthost(host.strip("[]"), int(port), relay.smarthost_tls, login)
    settings = ClientSettings(
        helo_name=a_label(relay.helo_name or cfg.hostname),  # EHLO takes ASCII only
        timeouts=Timeouts().scaled(relay.timeout_scale),
        max_connections=relay.max_connections,
        max_per_destination=relay.max_connections_per_destination,
        max_messages_per_minute=relay.max_messages_per_minute_per_destination,
        idle_seconds=relay.connection_idle_seconds,
        reuse_seconds=relay.connection_reuse_seconds,
        ca_file=str(cfg.resolve(relay.tls_ca_file)) if relay.tls_ca_file else None,
        smarthost=smarthost,
        dane=relay.dane,
    )
    mta_sts = None
    if relay.mta_sts and smarthost is None:
        mta_sts = MtaSts(dns, cfg.data_dir / "mta-sts", ca_file=settings.ca_file)
    return SmtpTransport(settings, dns, mta_sts)


def _fitted(envelope: ClientEnvelope, conn: Connection) -> ClientEnvelope | Refusal:
    """``envelope`` as this server can take it (8-bit converted), or why it cannot."""
    label, caps = conn.target.label, conn.core.caps
    why = refusal(caps, envelope, label)
    if why is not None:
        return why
    body = seven_bit(envelope, caps, to_seven_bit)
    if body is None:
        return Refusal(  # RFC 6152 §3
            "5.6.3",
            "the message has 8-bit content that cannot be converted to 7 bits (in a header "
            f"or a part that is not text) and {label} does not accept 8BITMIME",
        )
    if body is not envelope.message:
        return replace(envelope, message=body, eight_bit=False)
    return envelope


def _too_many(reply: Reply | None) -> bool:
    return reply is not None and reply.code == 452 and reply.enhanced in ("4.5.3", "")


def _envelope(message: OutboundMessage) -> ClientEnvelope:
    return ClientEnvelope(
        sender=message.sender,
        recipients=tuple(RecipientSpec(r.address, r.notify, r.orcpt) for r in message.recipients),
        message=message.message,
        ret=message.ret,
        envid=message.envid,
        smtputf8=message.smtputf8,
        eight_bit=message.eight_bit,
        requiretls=message.requiretls,
    )


def _outcome(address: str, reply: Reply | None, label: str) -> Outcome:
    if reply is None:  # cannot happen once a transaction is done; deferring is the safe side
        return Outcome(address, Status.TEMPORARY, f"{label} gave no answer", None, "4.4.2", label)
    if reply.code < 400:
        status = Status.DELIVERED
    elif reply.code < 500:
        status = Status.TEMPORARY
    else:
        status = Status.PERMANENT
    enhanced = reply.enhanced or f"{reply.code // 100}.0.0"
    verb = "accepted" if status is Status.DELIVERED else "answered"
    return Outcome(
        address, status, f"{label} {verb}: {describe(reply)}", reply.code, enhanced, label
    )


def _all(message: OutboundMessage, status: Status, text: str, enhanced: str) -> list[Outcome]:
    return [Outcome(r.address, status, text, None, enhanced) for r in message.recipients]
