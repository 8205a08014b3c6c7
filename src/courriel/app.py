"""The one place that builds courriel and wires it together, and runs it until told to stop.

Theory of operation
-------------------
``run(cfg)`` is what ``courriel serve`` calls: it sets up logging, runs ``serve`` on uvloop when
it is installed (plain asyncio otherwise) and returns the exit status: 0 after a clean shutdown,
1 when the server could not start (the reason is logged as one line), 130 when interrupted
while starting.

``serve`` starts in an order chosen so a mistake costs nothing: the TLS certificate is loaded
(made, the first time) and every enabled listener is bound before the store is opened, so a bad
certificate or a busy port fails in milliseconds with a line naming the file or the listener and
address. Then the store, the authenticator and one ``ProtocolHandlers`` per protocol, made by the
factories in ``handlers`` from the ``App`` context; then the listeners start accepting and the
settings table (``courriel.clientsettings``) is printed on stdout.

Relaying: ``courriel serve`` builds the SMTP transport ``[dns]`` and ``[relay]`` describe
(``courriel.net.smtp_client.from_config``) and hands it to ``serve``, which then gives submission
the store's outbound queue and runs a queue worker (``courriel.queue.worker``) beside the
listeners; the worker stops after the sessions, before the store closes. ``serve`` without a
transport (some tests) refuses mail for other domains at RCPT (451 4.4.0).

Signals: SIGHUP reloads the certificate for new connections (``TLSManager.reload``); SIGTERM and
SIGINT shut down gracefully: stop accepting, set ``closing``, give sessions
``[limits] shutdown_grace_seconds`` to finish their transactions, cancel what remains, and close
the store last, after every session that could write to it has ended.

Protocol engines plug in through ``handlers``: a mapping protocol name -> factory taking the
``App`` and returning ``ProtocolHandlers``. A protocol module takes its place with one line here,
and imports ``App`` under ``typing.TYPE_CHECKING`` only, so importing it never imports this
module (nothing registers itself on import)::

    def handlers(app: App) -> ProtocolHandlers:
        async def serve(stream: Stream, ctx: ConnectionContext) -> None:
            ...  # ctx.listener.name tells MX (smtp) from submission; STARTTLS with
            ...  # await stream.start_tls(app.tls.context, handshake_timeout=HANDSHAKE_TIMEOUT)
        async def refuse(stream: Stream, refusal: Refusal) -> None: ...
        return ProtocolHandlers(serve=serve, refuse=refuse)

The factory runs once per protocol at start-up; ``serve`` runs once per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import courriel.net.imap
import courriel.net.pop3
import courriel.net.smtp
from courriel import clientsettings, logs
from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import Config, ConfigError
from courriel.logs import kv
from courriel.net.listener import Connections, Listener, ProtocolHandlers
from courriel.net.ports import BindError, Bound, bind_listener, display
from courriel.net.tls import TLSError, TLSManager
from courriel.queue.outbound import Queue, RelayDisabled
from courriel.queue.transport import Transport
from courriel.queue.worker import Worker
from courriel.store.base import Store, StoreError

log = logging.getLogger("courriel.app")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


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
    signals: list[int] = field(default_factory=list)  # handlers installed by ``serve``

    @property
    def hostname(self) -> str:
        return self.cfg.hostname

    @property
    def closing(self) -> asyncio.Event:
        """Set when shutdown begins; long waits (IMAP IDLE) should end when it is set."""
        return self.connections.closing


HandlerFactory = Callable[[App], ProtocolHandlers]
StoreOpener = Callable[[Config], Awaitable[Store]]


# protocol name -> factory: each protocol engine's one entry point.
handlers: dict[str, HandlerFactory] = {
    "smtp": courriel.net.smtp.handlers,
    "imap": courriel.net.imap.handlers,
    "pop3": courriel.net.pop3.handlers,
}


class Running:
    """The server once it accepts connections; handed to ``serve``'s ``ready`` callback."""

    def __init__(self, app: App, listeners: list[Listener], bound: list[Bound]) -> None:
        self.app = app
        self.listeners = listeners
        self.bound = bound
        self._stop = asyncio.Event()

    def address(self, listener: str) -> tuple[str, int]:
        """Where the named listener accepts connections (the first address, if several)."""
        for lst in self.listeners:
            if lst.config.name == listener:
                return lst.addresses[0]
        raise KeyError(listener)

    def stop(self) -> None:
        """Begins the graceful shutdown, as SIGTERM does."""
        self._stop.set()

    def reload_tls(self) -> bool:
        """Reloads the certificate, as SIGHUP does."""
        return self.app.tls.reload()

    async def wait_stopped(self) -> None:
        await self._stop.wait()


def _bind_all(cfg: Config) -> list[Bound]:
    bound: list[Bound] = []
    try:
        for lc in cfg.listeners:
            if lc.enabled:
                bound.append(bind_listener(lc))
    except BindError as e:
        for b in bound:
            for sock in b.sockets:
                sock.close()
        raise StartupError(str(e)) from e
    return bound


async def _default_opener(cfg: Config) -> Store:
    from courriel.store.open import open_store

    return await open_store(cfg)


def _settings(cfg: Config, app: App, bound: list[Bound]) -> str:
    endpoints = [
        clientsettings.Endpoint(b.config.name, b.config.implicit_tls, b.address, b.port, b.fallback)
        for b in bound
    ]
    return clientsettings.render(cfg.hostname, endpoints, cert=app.tls.info, config_path=cfg.path)


def _install_signals(running: Running) -> list[int]:
    """SIGTERM/SIGINT stop, SIGHUP reloads TLS; only the main thread may install handlers."""
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
    loop.add_signal_handler(signal.SIGINT, stop, "SIGINT")
    loop.add_signal_handler(signal.SIGHUP, reload)
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
    """Runs the server until ``Running.stop``, SIGTERM or SIGINT; raises ``StartupError``.

    With a ``transport`` the server relays: submission queues mail for other domains in the
    store and a queue worker (``courriel.queue.worker``) delivers it through the transport;
    without one, such recipients are refused (451 4.4.0).
    """
    tls = TLSManager(cfg)
    try:
        tls.load()
    except TLSError as e:
        raise StartupError(f"TLS: {e}") from e
    try:
        hasher = PasswordHasher.from_config(cfg.auth)
    except ValueError as e:
        raise StartupError(f"[auth]: {e}") from e
    bound = _bind_all(cfg)
    try:
        store = await _open_store(open_store or _default_opener, cfg)
    except BaseException:
        for b in bound:
            for sock in b.sockets:
                sock.close()
        raise
    auth = Authenticator(store, hasher, AuthCache(cfg.auth.cache_seconds))
    limiter = AuthLimiter(store, cfg.auth)
    worker = None if transport is None else Worker(store, transport, cfg.queue, cfg.hostname)
    outbound = RelayDisabled() if worker is None else worker.outbound
    app = App(cfg, store, auth, hasher, tls, Connections(cfg.limits), limiter, outbound)
    try:
        await _run(app, bound, ready, factories if factories is not None else handlers, worker)
    finally:
        if transport is not None:
            await transport.close()
        await store.close()  # last: every session that could write has ended
        await asyncio.to_thread(hasher.close)
        loop = asyncio.get_running_loop()
        for signum in app.signals:
            loop.remove_signal_handler(signum)
        log.info("stopped")


async def _run(
    app: App,
    bound: list[Bound],
    ready: Callable[[Running], None] | None,
    factories: dict[str, HandlerFactory],
    worker: Worker | None = None,
) -> None:
    made = {b.config.protocol: factories[b.config.protocol](app) for b in bound}
    listeners = [
        Listener(b.config, list(b.sockets), made[b.config.protocol], app.tls, app.connections)
        for b in bound
    ]
    running = Running(app, listeners, bound)
    installed = _install_signals(running)
    delivering: asyncio.Task[None] | None = None
    try:
        for lst, b in zip(listeners, bound, strict=True):
            lst.start()
            log.info("listening", extra=kv(listener=b.config.name, on=display(b.address, b.port)))
        sys.stdout.write(_settings(app.cfg, app, bound))
        sys.stdout.flush()
        if worker is not None:
            delivering = asyncio.create_task(worker.run(), name="queue worker")
        if ready is not None:
            ready(running)
        await running.wait_stopped()
    finally:
        log.info("stopping: no new connections")
        await asyncio.gather(*(lst.stop_accepting() for lst in listeners))
        await app.connections.shutdown(app.cfg.limits.shutdown_grace_seconds)
        if worker is not None and delivering is not None:
            # Deliveries in flight end (cut short after the grace time) and give their
            # leases back; what they did not record is tried again after a restart.
            await worker.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(delivering, app.cfg.limits.shutdown_grace_seconds)
        # The handlers stay until ``serve`` has closed the store: a second SIGTERM during
        # shutdown (systemd, an impatient operator) must not kill the process mid-close.
        app.signals.extend(installed)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve_relaying(cfg: Config) -> None:
    """``serve`` with the relay transport ``[dns]`` and ``[relay]`` describe."""
    from courriel.net.smtp_client import from_config  # the account commands never need it

    try:
        transport = from_config(cfg)
    except ConfigError as e:
        raise StartupError(str(e)) from e
    await serve(cfg, transport=transport)


def run(cfg: Config) -> int:
    """``courriel serve``: serves until SIGTERM or SIGINT; the exit status."""
    logs.setup(cfg.log)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            runner.run(_serve_relaying(cfg))
        except StartupError as e:
            log.error("cannot start: %s", e)
            return EXIT_FAILURE
        except KeyboardInterrupt:
            # Ctrl-C before the signal handlers were installed: nothing was served yet.
            log.info("interrupted while starting")
            return EXIT_INTERRUPTED
    return EXIT_OK
