"""The one place that builds courriel and wires it together, and runs it until told to stop.

Theory of operation
-------------------
``run(cfg)`` is what ``courriel serve`` calls. It sets up logging, then does in the parent
process everything that can fail, in an order chosen so a mistake costs nothing: the TLS
certificate is loaded (made, the first time) and every enabled listener is bound before the store
is opened, so a bad certificate or a busy port fails in milliseconds with a line naming the file or
the listener and address (``prepare``). Then the store is opened once, which runs the schema
migrations, and the caller's ``setup`` runs on it (the first-run demo account); the store is
closed again. Only then does the ``Supervisor`` (``courriel.supervisor``) fork ``[server]
workers`` processes, and print the settings table once every worker serves. ``run`` returns the
exit status: 0 after a clean shutdown, 1 when the server could not start (the reason is logged as
one line), 130 when interrupted while starting.

Each worker (``_worker``) inherits the bound sockets and the loaded certificate, binds
``worker=N`` into its log context, creates its own event loop (uvloop when installed, plain
asyncio otherwise) and runs ``serve_prepared``: its own store, authenticator and one
``ProtocolHandlers`` per protocol, made by the factories in ``handlers`` from the ``App`` context.
Every worker accepts on the same listening sockets, so the kernel hands each connection to one
worker that is free to take it, and a worker stuck in a command takes none. A watchdog
(``courriel.net.watchdog``) logs every stall of the worker's loop and keeps the heartbeat the
supervisor reads to replace a stuck worker.

``serve(cfg)`` is the same server in the calling process and its event loop, without workers
(tests, and programs that embed courriel); its ``ready`` callback receives the ``Running`` server.

Relaying: each worker builds the SMTP transport ``[dns]`` and ``[relay]`` describe
(``courriel.net.smtp_client.from_config``; checked once in the parent before the fork), gives
submission the store's outbound queue and runs a queue worker (``courriel.queue.worker``) beside
its listeners; the queue workers of all processes share the work through leases in the store.
The queue worker stops after the sessions, before the store closes. ``serve`` without a
transport (some tests) refuses mail for other domains at RCPT (451 4.4.0).

Mail authentication: with ``[mailauth] check_inbound`` and the ``smtp`` listener enabled, each
worker builds one ``MailAuth`` (SPF, DKIM, DMARC for port 25) over a resolver of its own made
from ``[dns]`` (same servers and timeout as the relay's, its own cache), and closes it at
shutdown. DKIM key upkeep -- keys for domains that have none, rotated keys retired after their
grace period -- runs once on the store before the workers start (``serve``: once at start), and
every 15 minutes in each worker, which also activates the pending keys of a rotation whose
records DNS shows (publish before sign). With a queue, each worker also runs the DMARC aggregate
reporter (``[mailauth] dmarc_reports``), which a lease in the store lets one node at a time do.

Signals, to the parent: SIGHUP reloads the certificate in the parent (for workers started later)
and in every worker, for new connections (``TLSManager.reload``); SIGTERM and SIGINT shut down
gracefully: each worker stops accepting, sets ``closing``, gives sessions the rest of ``[limits]
shutdown_grace_seconds`` to finish their transactions, cancels what remains and closes its store
last, after every session that could write to it has ended; a worker still alive at the end of the
grace period is killed. ``serve`` handles the same signals itself when it runs in the main thread.

Protocol engines plug in through ``handlers``: a mapping protocol name -> factory taking the
``App`` and returning ``ProtocolHandlers``. The factories here (``smtp_handlers``,
``imap_handlers``, ``pop3_handlers``, ``managesieve_handlers``) build the narrow services record
a protocol uses (``courriel.net.services``) and hand it to the protocol's ``handlers``; net/
never sees the ``App`` (tests/test_layers.py checks it). A protocol module wraps its core and
session in the driver's ``Session`` and runs it with ``net.driver.Driver``, which reads, writes,
times out, starts TLS and COMPRESS, and says goodbye at shutdown (docs/architecture.md)::

    def handlers(services: LoginServices) -> ProtocolHandlers:
        async def serve(stream: Stream, ctx: ConnectionContext) -> None:
            driver = Driver(stream, ctx, services.tls, handshake_timeout=HANDSHAKE_TIMEOUT)
            await driver.run(MyDriven(...))  # greeting, next_event, handle -> Step, ...
        async def refuse(stream: Stream, refusal: Refusal) -> None: ...
        return ProtocolHandlers(serve=serve, refuse=refuse)

The factory runs once per protocol in each worker; ``serve`` runs once per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import courriel.net.imap
import courriel.net.managesieve
import courriel.net.pop3
import courriel.net.smtp
from courriel import clientsettings, logs
from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import Config, ConfigError
from courriel.junk.checks import ConnectionChecks
from courriel.junk.filter import JunkFilter
from courriel.junk.learn import JunkLearner
from courriel.logs import kv
from courriel.mail.auth.dns import Resolver
from courriel.mail.auth.inbound import MailAuth
from courriel.maillog import MailLog
from courriel.net.listener import Connections, Listener, ProtocolHandlers
from courriel.net.pop3 import IDLE_TIMEOUT as POP3_IDLE
from courriel.net.ports import BindError, Bound, bind_listener, display
from courriel.net.services import ImapServices, LoginServices, SmtpServices
from courriel.net.shared_counts import CountsRow, SharedCounts, local_counts
from courriel.net.tls import TLSError, TLSManager
from courriel.net.watchdog import HeartbeatTable, Watchdog, describe
from courriel.queue.filtering import Filters
from courriel.queue.outbound import Queue, RelayDisabled
from courriel.queue.signer import DkimSigner, Sealer, Signer
from courriel.queue.transport import Transport
from courriel.queue.worker import Worker
from courriel.session.imap.state import MAX_SESSIONS_PER_USER
from courriel.session.pop3_maildrop import DEFAULT_LEASE_SECONDS
from courriel.session.smtp import SessionServices
from courriel.session.smtp_junk import JunkServices
from courriel.store.base import Store, StoreError
from courriel.supervisor import Supervisor, WorkerMain
from courriel.web.acme import CertificateKeeper
from courriel.web.admin_context import Access
from courriel.web.app import listeners as web_listeners
from courriel.web.server import WebListener

log = logging.getLogger("courriel.app")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT
DKIM_UPKEEP_EVERY = 900.0  # seconds between looks for DKIM keys to make, activate or retire
# How long the event loop may keep the GIL while a store thread waits for it (Python's default is
# 5 ms). The SQLite writer thread needs the GIL back after each COMMIT before its next batch can
# start; at 5 ms that wait was longer than the commit itself under 20 SMTP sessions. 1 ms:
# 1,333 -> 1,490 msgs/s there (medians of six alternate runs), IMAP mixed and one SMTP session
# unchanged within noise.
GIL_SWITCH_INTERVAL = 0.001


class StartupError(Exception):
    """The server cannot start; the message is the one line a person needs to fix it."""


@dataclass(frozen=True, slots=True)
class App:
    """Everything a protocol session may use, built once at start-up."""

    cfg: Config
    store: Store
    auth: Authenticator
    hasher: PasswordHasher
    tls: TLSManager  # ``tls.context`` at the moment of STARTTLS is the one to use
    connections: Connections
    limiter: AuthLimiter  # failed-login limits shared by every protocol
    # Where submission puts mail for other domains: the store's queue when a transport can
    # deliver it, else a queue that refuses (``courriel.queue.outbound``).
    outbound: Queue = field(default_factory=RelayDisabled)
    # SPF, DKIM and DMARC for port 25 (``[mailauth] check_inbound``); None: not checked.
    mailauth: MailAuth | None = None
    # DKIM signatures for mail our users submit (``DkimSigner.sign``); None: unsigned.
    sign: Signer | None = None
    # IMAP sessions per user, counted over every worker process (``Prepared.imap_users``).
    imap_users: CountsRow = field(default_factory=local_counts)
    # ARC sets for mail port 25 forwards through an alias (``DkimSigner.seal``); None: unsealed.
    seal: Sealer | None = None
    signals: list[int] = field(default_factory=list)  # handlers installed by ``serve``
    # Recent deliveries and refusals for the web admin (``courriel.maillog``); None: not kept.
    maillog: MailLog | None = None

    @property
    def hostname(self) -> str:
        return self.cfg.hostname

    @property
    def closing(self) -> asyncio.Event:
        """Set when shutdown begins; long waits (IMAP IDLE) should end when it is set."""
        return self.connections.closing


HandlerFactory = Callable[[App], ProtocolHandlers]
StoreOpener = Callable[[Config], Awaitable[Store]]
Setup = Callable[[Store], Awaitable[None]]  # runs once on the store before the workers start


# protocol name -> factory: each protocol engine's one entry point.
def login_services(app: App) -> LoginServices:
    """What POP3 and ManageSieve use of the server."""
    return LoginServices(app.store, app.auth, app.limiter, app.tls, app.hostname)


def pop3_handlers(
    app: App, *, idle_timeout: float = POP3_IDLE, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> ProtocolHandlers:
    """POP3; the keyword arguments exist so tests can shorten the limits."""
    server = courriel.net.pop3.Pop3Server(
        login_services(app), idle_timeout=idle_timeout, lease_seconds=lease_seconds
    )
    return server.handlers()


def junk_services(app: App) -> JunkServices:
    """The ``[junk]`` services of port 25; DNS through the SPF/DKIM/DMARC checks' resolver, or
    one of its own when those are off."""
    cfg = app.cfg.junk
    resolver: Resolver | None = app.mailauth.resolver if app.mailauth is not None else None
    if resolver is None and (cfg.dnsbl_zones or cfg.fcrdns):
        from courriel.auth_resolver import AuthResolver  # dnspython: only when it is used

        resolver = AuthResolver(app.cfg.dns.nameservers, timeout=cfg.dns_timeout_seconds)
    checks = ConnectionChecks(cfg, resolver, app.hostname)
    return JunkServices(cfg, checks, JunkFilter(app.store, cfg) if cfg.scoring else None)


def smtp_services(app: App, *, queue: Queue | None = None) -> SmtpServices:
    """What SMTP uses of the server. Submission hands remote recipients to ``queue`` (default:
    the app's outbound queue); the inbound MX never relays for addresses we do not host (RFC
    5321 §3.6.2: no open relay), and queues only the forwards of our aliases to other domains.
    """
    outbound = queue if queue is not None else app.outbound
    submission = SessionServices(
        store=app.store,
        authenticator=app.auth,
        limiter=app.limiter,
        queue=outbound,
        hostname=app.hostname,
        sign=app.sign,
        events=app.maillog,
        # Sieve redirects and answers leave through the app's queue on every port.
        filters=Filters(app.store, outbound, app.hostname),
    )
    # Port 25 checks SPF, DKIM, DMARC and ARC when the app has a checker (``[mailauth]``) and
    # filters junk (``[junk]``). It queues only what our aliases forward (RCPT refuses other
    # domains' addresses) and seals it.
    mx = replace(
        submission,
        checker=app.mailauth,
        mailauth=app.cfg.mailauth,
        seal=app.seal,
        junk=junk_services(app),
    )
    return SmtpServices(
        submission=submission,
        mx=mx,
        tls=app.tls,
        hostname=app.hostname,
        max_message_bytes=app.cfg.limits.max_message_bytes,
    )


def smtp_handlers(
    app: App,
    *,
    queue: Queue | None = None,
    command_timeout: float = courriel.net.smtp.COMMAND_TIMEOUT,
    data_timeout: float = courriel.net.smtp.DATA_TIMEOUT,
) -> ProtocolHandlers:
    """SMTP; the keyword arguments exist so tests can choose the queue and shorten timeouts."""
    return courriel.net.smtp.handlers(
        smtp_services(app, queue=queue), command_timeout=command_timeout, data_timeout=data_timeout
    )


def imap_handlers(
    app: App,
    *,
    login_timeout: float = courriel.net.imap.LOGIN_TIMEOUT,
    autologout: float = courriel.net.imap.AUTOLOGOUT,
    sessions_per_user: int = MAX_SESSIONS_PER_USER,
) -> ProtocolHandlers:
    """IMAP; the keyword arguments exist so tests can shorten the limits."""
    services = ImapServices(
        login_services(app),
        appendlimit=app.cfg.limits.max_message_bytes,
        user_counts=app.imap_users,
        # Moves into and out of Junk, $Junk and $NotJunk train each user's junk filter.
        junk=JunkLearner(app.store) if app.cfg.junk.learn else None,
    )
    return courriel.net.imap.handlers(
        services,
        login_timeout=login_timeout,
        autologout=autologout,
        sessions_per_user=sessions_per_user,
    )


def managesieve_handlers(app: App) -> ProtocolHandlers:
    return courriel.net.managesieve.handlers(login_services(app))


handlers: dict[str, HandlerFactory] = {
    "smtp": smtp_handlers,
    "imap": imap_handlers,
    "pop3": pop3_handlers,
    "managesieve": managesieve_handlers,
}


class Running:
    """The server once it accepts connections; handed to ``serve``'s ``ready`` callback."""

    def __init__(
        self,
        app: App,
        listeners: list[Listener],
        bound: list[Bound],
        web: WebListener | None = None,
    ) -> None:
        self.app = app
        self.listeners = listeners
        self.bound = bound
        self.web = web
        self._stop = asyncio.Event()

    def address(self, listener: str) -> tuple[str, int]:
        """Where the named listener accepts connections (the first address, if several)."""
        for lst in self.listeners:
            if lst.config.name == listener:
                return lst.addresses[0]
        if self.web is not None and listener in self.web.addresses:
            return self.web.addresses[listener][0]
        raise KeyError(listener)

    def stop(self) -> None:
        """Begins the graceful shutdown, as SIGTERM does."""
        self._stop.set()

    def reload_tls(self) -> bool:
        """Reloads the certificate, as SIGHUP does."""
        return self.app.tls.reload()

    async def wait_stopped(self) -> None:
        await self._stop.wait()


@dataclass(slots=True)
class Prepared:
    """What the parent makes before the store is opened and the workers are forked: the
    certificate, the bound sockets, and the counts behind the server-wide limits."""

    tls: TLSManager
    bound: list[Bound]
    connections: SharedCounts = field(default_factory=lambda: SharedCounts(1))
    imap_users: SharedCounts = field(default_factory=lambda: SharedCounts(1))

    def close(self) -> None:
        _close(self.bound)


def _close(bound: list[Bound]) -> None:
    for b in bound:
        for sock in b.sockets:
            sock.close()


def _bind_all(cfg: Config) -> list[Bound]:
    bound: list[Bound] = []
    try:
        for lc in cfg.listeners:
            if lc.enabled:
                bound.append(bind_listener(lc))
    except BindError as e:
        _close(bound)
        raise StartupError(str(e)) from e
    return bound


def prepare(cfg: Config) -> Prepared:
    """Loads the certificate, checks the hashing costs and binds every listener."""
    tls = TLSManager(cfg)
    try:
        tls.load()
    except TLSError as e:
        raise StartupError(f"TLS: {e}") from e
    try:
        PasswordHasher.from_config(cfg.auth)  # starts no thread until it first hashes
    except ValueError as e:
        raise StartupError(f"[auth]: {e}") from e
    slots = cfg.server.worker_count()
    return Prepared(tls, _bind_all(cfg), SharedCounts(slots), SharedCounts(slots))


async def _default_opener(cfg: Config) -> Store:
    from courriel.store.open import open_store

    return await open_store(cfg)


def _settings(cfg: Config, tls: TLSManager, bound: list[Bound]) -> str:
    endpoints = clientsettings.endpoints(bound)
    return clientsettings.render(cfg.hostname, endpoints, cert=tls.info, config_path=cfg.path)


def _print_settings(cfg: Config, prepared: Prepared) -> None:
    sys.stdout.write(_settings(cfg, prepared.tls, prepared.bound))
    sys.stdout.flush()


def _log_listening(bound: list[Bound]) -> None:
    for b in bound:
        log.info("listening", extra=kv(listener=b.config.name, on=display(b.address, b.port)))


def _install_signals(running: Running, *, interrupt: bool) -> list[int]:
    """SIGTERM (and SIGINT) stop, SIGHUP reloads TLS; only the main thread may install them."""
    if threading.current_thread() is not threading.main_thread():
        return []
    loop = asyncio.get_running_loop()

    def stop(name: str) -> None:
        log.info("shutting down", extra=kv(signal=name))
        running.stop()

    def reload() -> None:
        log.info("reloading the TLS certificate", extra=kv(signal="SIGHUP"))
        running.reload_tls()

    loop.add_signal_handler(signal.SIGTERM, stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGHUP, reload)
    if not interrupt:
        return [signal.SIGTERM, signal.SIGHUP]
    loop.add_signal_handler(signal.SIGINT, stop, "SIGINT")
    return [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


async def _open_store(opener: StoreOpener, cfg: Config) -> Store:
    try:
        return await opener(cfg)
    except (StoreError, OSError) as e:
        raise StartupError(f"cannot open the store: {e}") from e


async def serve(
    cfg: Config,
    *,
    ready: Callable[[Running], None] | None = None,
    open_store: StoreOpener | None = None,
    factories: dict[str, HandlerFactory] | None = None,
    transport: Transport | None = None,
) -> None:
    """Runs the server in this process until ``Running.stop``, SIGTERM or SIGINT; raises
    ``StartupError``. With a ``transport`` it relays mail for other domains (see
    ``serve_prepared``)."""
    await serve_prepared(
        cfg,
        prepare(cfg),
        ready=ready,
        open_store=open_store,
        factories=factories,
        transport=transport,
    )


async def serve_prepared(
    cfg: Config,
    prepared: Prepared,
    *,
    ready: Callable[[Running], None] | None = None,
    open_store: StoreOpener | None = None,
    factories: dict[str, HandlerFactory] | None = None,
    worker: bool = False,
    slot: int = 0,
    transport: Transport | None = None,
) -> None:
    """``serve`` on sockets already bound; a ``worker`` prints no settings and leaves SIGINT to
    the supervisor.

    With a ``transport`` submission queues mail for other domains in the store and a queue
    worker (``courriel.queue.worker``) delivers it through the transport; without one such
    recipients are refused at RCPT (451 4.4.0).
    """
    hasher = PasswordHasher.from_config(cfg.auth)
    try:
        store = await _open_store(open_store or _default_opener, cfg)
    except BaseException:
        prepared.close()
        raise
    auth = Authenticator(store, hasher, AuthCache(cfg.auth.cache_seconds))
    limiter = AuthLimiter(store, cfg.auth)
    relay = None
    signer = DkimSigner(store)
    sign = signer.sign  # submitted mail is signed as it is queued or stored here
    maillog = MailLog(store)
    if transport is not None:
        relay = Worker(store, transport, cfg.queue, cfg.hostname, sign=sign, events=maillog)
    outbound = RelayDisabled() if relay is None else relay.outbound
    try:
        if not worker:  # the supervisor's parent does this once for all workers
            await _dkim_upkeep(store)
        mailauth = _mailauth(cfg)
    except BaseException:
        await store.close()
        prepared.close()
        raise
    # This worker's rows of the server-wide counts; what a predecessor in the slot counted
    # died with it.
    counted = prepared.connections.row(slot)
    counted.reset()
    imap_users = prepared.imap_users.row(slot)
    imap_users.reset()
    connections = Connections(cfg.limits, counted)
    app = App(
        cfg,
        store,
        auth,
        hasher,
        prepared.tls,
        connections,
        limiter,
        outbound,
        mailauth,
        sign,
        imap_users=imap_users,
        maillog=maillog,
        seal=signer.seal,
    )
    try:
        chosen = factories if factories is not None else handlers
        await _run(app, prepared, ready, chosen, worker, relay)
    finally:
        if transport is not None:
            await transport.close()
        if mailauth is not None:
            mailauth.close()
        await maillog.close()
        await store.close()  # last: every session that could write has ended
        await asyncio.to_thread(hasher.close)
        loop = asyncio.get_running_loop()
        for signum in app.signals:
            loop.remove_signal_handler(signum)
        log.info("stopped")


async def _run(
    app: App,
    prepared: Prepared,
    ready: Callable[[Running], None] | None,
    factories: dict[str, HandlerFactory],
    worker: bool,
    relay: Worker | None = None,
) -> None:
    bound = prepared.bound
    mail = [b for b in bound if b.config.protocol != "http"]  # http: ``courriel.web``
    made = {b.config.protocol: factories[b.config.protocol](app) for b in mail}
    listeners = [
        Listener(b.config, list(b.sockets), made[b.config.protocol], app.tls, app.connections)
        for b in mail
    ]
    web = web_listeners(
        app.store,
        app.cfg,
        app.tls,
        bound,
        Access(app.auth, app.limiter, app.hasher),
        counts=app.connections.counts,
    )
    running = Running(app, listeners, bound, web)
    installed = _install_signals(running, interrupt=not worker)
    delivering: asyncio.Task[None] | None = None
    upkeep = asyncio.create_task(_dkim_upkeep_every(app), name="dkim key upkeep")
    keeper = CertificateKeeper(app.store, app.cfg, app.tls)
    await keeper.refresh_safely()  # an ACME certificate in the store is served from the start
    certificates = asyncio.create_task(keeper.run(), name="certificate keeper")
    background = [upkeep, certificates, *_reporting(app, relay)]
    try:
        for lst in listeners:
            lst.start()
        if web is not None:
            await web.start()
        if relay is not None:
            delivering = asyncio.create_task(relay.run(), name="queue worker")
        if not worker:
            _log_listening(bound)
            _print_settings(app.cfg, prepared)
        if ready is not None:
            ready(running)
        await running.wait_stopped()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        log.info("stopping: no new connections")
        await asyncio.gather(*(lst.stop_accepting() for lst in listeners))
        grace = _session_grace(app.cfg.limits.shutdown_grace_seconds)
        web_stopped = web.stop(grace) if web is not None else asyncio.sleep(0)
        await asyncio.gather(app.connections.shutdown(grace), web_stopped)
        if relay is not None and delivering is not None:
            await _stop_relay(relay, delivering, app.cfg.limits.shutdown_grace_seconds)
        # The handlers stay until ``serve`` has closed the store: a second SIGTERM during
        # shutdown (systemd, an impatient operator) must not kill the process mid-close.
        app.signals.extend(installed)


async def _stop_relay(relay: Worker, delivering: asyncio.Task[None], grace: float) -> None:
    """Deliveries in flight end (cut short after a part of the grace time) and give their
    leases back; what they did not record is tried again after a restart."""
    await relay.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(delivering, _session_grace(grace) / 2)


def _reporting(app: App, relay: Worker | None) -> list[asyncio.Task[None]]:
    """The DMARC aggregate reporter (``courriel.queue.dmarc_reports``) when port 25 checks
    mail, reports are on and a queue can send them."""
    if relay is None or app.mailauth is None or not app.cfg.mailauth.dmarc_reports:
        return []
    from courriel.queue.bounce import Notifier
    from courriel.queue.dmarc_reports import DmarcReporter

    notifier = Notifier(app.store, relay.outbound)
    reporter = DmarcReporter(app.store, notifier.send, app.mailauth.resolver, app.hostname)
    return [asyncio.create_task(reporter.run(), name="dmarc reports")]


def _mailauth(cfg: Config) -> MailAuth | None:
    """The port 25 checks, with a resolver of their own from ``[dns]``; None when they are off
    or nothing listens on port 25."""
    if not cfg.mailauth.check_inbound or not any(
        lc.enabled and lc.name == "smtp" for lc in cfg.listeners
    ):
        return None
    from courriel.auth_resolver import AuthResolver  # dnspython: only when it is used

    try:
        resolver = AuthResolver(cfg.dns.nameservers, timeout=cfg.dns.timeout_seconds)
    except ConfigError as e:
        raise StartupError(str(e)) from e
    return MailAuth(resolver, cfg.hostname, trusted_arc_sealers=cfg.mailauth.trusted_arc_sealers)


async def _dkim_upkeep(store: Store) -> None:
    """Keys for every domain that has none (domains made before courriel signed), and rotated
    keys past their grace period retired; a store failure is logged, not fatal."""
    from courriel.admin_dkim import ensure_keys, retire_due

    try:
        made = await ensure_keys(store)
        retired = await retire_due(store)
    except StoreError as e:
        log.warning("DKIM key upkeep failed: %s", e)
        return
    except Exception:  # a bug here must not stop the server from starting or serving
        log.exception("DKIM key upkeep failed")
        return
    for domain in made:
        log.info("DKIM keys made; publish them (courriel dns)", extra=kv(domain=domain))
    if retired:
        log.info("DKIM keys retired", extra=kv(count=retired))


async def _dkim_upkeep_every(app: App, seconds: float = DKIM_UPKEEP_EVERY) -> None:
    resolver = None
    while True:
        await asyncio.sleep(seconds)
        await _dkim_upkeep(app.store)
        if resolver is None:
            resolver = _upkeep_resolver(app)
        if resolver is not None:
            await _dkim_activation(app.store, resolver)


def _upkeep_resolver(app: App) -> Resolver | None:
    """The checks' resolver, else one of its own from ``[dns]`` (None: no DNS configured)."""
    if app.mailauth is not None:
        return app.mailauth.resolver
    from courriel.auth_resolver import AuthResolver

    try:
        return AuthResolver(app.cfg.dns.nameservers, timeout=app.cfg.dns.timeout_seconds)
    except ConfigError as e:
        log.warning("DKIM keys waiting to be published cannot be checked: %s", e)
        return None


async def _dkim_activation(store: Store, resolver: Resolver) -> None:
    """Pending DKIM keys whose record DNS shows start signing (publish before sign)."""
    from courriel.admin_dkim import activate_published

    try:
        result = await activate_published(store, resolver)
    except StoreError as e:
        log.warning("DKIM key activation failed: %s", e)
        return
    except Exception:  # a bug here must not stop the worker
        log.exception("DKIM key activation failed")
        return
    for key in result.activated:
        log.info(
            "DKIM key published, now signing", extra=kv(domain=key.domain, selector=key.selector)
        )


def _relay_transport(cfg: Config) -> Transport:
    """The SMTP transport ``[dns]`` and ``[relay]`` describe; ``StartupError`` when it cannot
    be made (a smarthost password file that cannot be read, no resolver configuration)."""
    from courriel.net.smtp_client import from_config  # the account commands never need it

    try:
        return from_config(cfg)
    except ConfigError as e:
        raise StartupError(str(e)) from e


def _session_grace(grace: float) -> float:
    """The part of the grace period sessions get; the rest is for closing the store."""
    return grace - min(1.0, grace * 0.1)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


# --- the worker processes -----------------------------------------------------------------------


def _worker(cfg: Config, prepared: Prepared) -> WorkerMain:
    """What each forked worker runs (``Supervisor`` calls it in the child)."""

    def main(slot: int, table: HeartbeatTable, ready_fd: int) -> int:
        logs.bind(worker=slot + 1)
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        watchdogs: list[Watchdog] = []

        def ready(running: Running) -> None:
            watchdogs.append(_watchdog(cfg, running, table, slot))
            os.write(ready_fd, b"r")  # wakes the supervisor: this worker serves

        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            try:
                transport = _relay_transport(cfg)
                runner.run(
                    serve_prepared(
                        cfg, prepared, ready=ready, worker=True, slot=slot, transport=transport
                    )
                )
            except StartupError as e:
                log.error("cannot start: %s", e)
                return EXIT_FAILURE
            finally:
                for w in watchdogs:
                    w.stop()
        return EXIT_OK

    return main


def _watchdog(cfg: Config, running: Running, table: HeartbeatTable, slot: int) -> Watchdog:
    loop = asyncio.get_running_loop()
    main_thread = threading.get_ident()
    context = contextvars.copy_context()

    def orphaned() -> None:
        log.error("the supervisor is gone: stopping")
        running.stop()

    watchdog = Watchdog(
        table,
        slot,
        threshold=cfg.server.stall_log_seconds or math.inf,  # 0: the beat only, never a line
        describe=lambda: describe(loop, running.app.connections, main_thread),
        # Called in the watch thread; the line is logged with the loop's context (worker=N).
        orphaned=lambda: loop.call_soon_threadsafe(orphaned, context=context),
    )
    watchdog.start(loop)
    return watchdog


async def _prepare_store(cfg: Config, setup: Setup | None, tls: TLSManager | None = None) -> None:
    """Opens the store once in the parent, which runs the migrations, and runs ``setup``."""
    from courriel.store.open import open_store

    # Not as a server (no upkeep, no claim on the directory): it is closed before the fork, and
    # the workers open it as servers.
    store = await _open_store(lambda c: open_store(c, serving=False), cfg)
    try:
        if setup is not None:
            await setup(store)
        await _dkim_upkeep(store)
        if tls is not None:  # the settings table shows the certificate the workers will serve
            await CertificateKeeper(store, cfg, tls).refresh_safely()
    finally:
        await store.close()


def _no_threads() -> None:
    """Forking copies only the calling thread, and any lock another thread held stays held."""
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        raise StartupError(f"threads still running before the workers start: {', '.join(others)}")


def run(cfg: Config, *, setup: Setup | None = None) -> int:
    """``courriel serve``: serves until SIGTERM or SIGINT; the exit status."""
    logs.setup(cfg.log)
    try:
        prepared = prepare(cfg)
    except StartupError as e:
        log.error("cannot start: %s", e)
        return EXIT_FAILURE
    try:
        _log_listening(prepared.bound)
        _relay_transport(cfg)  # a relay setting that cannot work fails here, before the fork
        asyncio.run(_prepare_store(cfg, setup, prepared.tls))
        _no_threads()
        supervisor = Supervisor(
            cfg.server.worker_count(),
            _worker(cfg, prepared),
            grace=cfg.limits.shutdown_grace_seconds,
            stall_kill=cfg.server.stall_kill_seconds,
            on_ready=lambda: _print_settings(cfg, prepared),
            on_reload=prepared.tls.reload,
        )
        return supervisor.run()
    except StartupError as e:
        log.error("cannot start: %s", e)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # Ctrl-C before the supervisor took the signals: nothing was served yet.
        log.info("interrupted while starting")
        return EXIT_INTERRUPTED
    finally:
        prepared.close()
