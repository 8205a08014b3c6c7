"""Transcript tests: a plain-text conversation with the server, checked line by line.

Theory of operation
-------------------
A transcript file is what a person checks against the RFC: header lines choose the fixture,
then ``C:`` lines are sent and ``S:`` lines must come back exactly. The runner starts a real
courriel server in-process (``courriel.app.serve``) on free 127.0.0.1 ports with a temporary data
directory, creates the users, aliases and messages the header asks for, connects to the chosen
listener and plays the steps. A failure names the file and line. The connection is a memory
stream pair (``net/memstream.py``) whose server end the listener serves as it would an accepted
socket (``Listener.serve_stream``); TLS (implicit, ``!starttls``) is real TLS over it.
``COURRIEL_TRANSCRIPT_LOOPBACK=1`` (or ``run_transcript(..., loopback=True)``) plays over a
loopback socket instead.

Format (one directive per line; blank lines are ignored)::

    # a comment, e.g. the RFC section the transcript checks
    @listener submission             any listener: smtp, submission, imap, imaps, pop3s, sieve ...
    @user alice@example.test secret  a user (and their domain), with the standard mailboxes
    @alias sales@example.test alice@example.test
    @catchall example.test alice@example.test
    @deliver alice@example.test INBOX plain.eml [\\Seen $Label]   a file from messages/
    @include imap-logged-in tag=a0   the steps of include/imap-logged-in.txt, here
    C: a client line                 sent with CRLF
    S: an exact server line          without its CRLF; {hostname} is the server's name
    S~ a regular expression          must match the whole server line; its named groups
                                     (?P<name>...) are kept, and {name} in any later line
                                     stands for what the group matched
    !starttls                        the client starts TLS now
    !closed                          the server must have closed the connection

Lines are sent one ``C:`` at a time unless several ``C:`` lines follow each other: those go in
one write, which is how a test pipelines commands. ``S:`` lines are read in order; a server that
sends something else, or nothing within the step timeout, fails the transcript. A kept group
lets a transcript send back what the server made up, such as a signed URL (RFC 4467).

Includes. What the server announces (an EHLO reply, an IMAP CAPABILITY list, ManageSieve's
capabilities) is asserted in full, line by line, and is the same in many transcripts: it is
written once in ``include/<name>.txt`` (beside the protocol directories) and ``@include <name>``
puts its steps where the directive stands, so a capability that appears or disappears fails
every transcript that sees it, and the change is made in one file. An included file holds only
steps, comments and blank lines. Its ``{name}`` words other than ``{hostname}`` are parameters,
each given as ``name=value`` on the ``@include`` line (``@include imap-logged-in tag=a7``); a
missing or unknown one is an error. A failure in an included step names the transcript's
``@include`` line and the included file's line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from courriel import admin, config
from courriel.accounts.passwords import PasswordHasher
from courriel.app import HandlerFactory, Running, StoreOpener, serve
from courriel.config import LISTENERS, Config
from courriel.net.memstream import MemoryStream, memory_stream_pair
from courriel.net.tls import make_self_signed
from courriel.queue.transport import Transport
from courriel.store.base import Store
from courriel.testing.fill import add_domain_once, add_user, delivered
from courriel.testing.net import free_ports

HOSTNAME = "mail.example.test"
INCLUDE_DIR = "include"  # beside the protocol directories: the files @include reads
_NAME_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
STEP_TIMEOUT = 5.0
START_TIMEOUT = 20.0
LOOPBACK_ENV = "COURRIEL_TRANSCRIPT_LOOPBACK"
MEMORY_PEER = ("127.0.0.1", 40000)  # the client address a session run in-process is told


class TranscriptError(AssertionError):
    """A transcript that does not hold; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Step:
    line: int
    kind: str  # "send" | "expect" | "match" | "starttls" | "closed"
    text: str = ""
    origin: str = ""  # "include/<name>.txt:<line>" for a step of an included file


@dataclass(frozen=True, slots=True)
class Delivery:
    address: str
    mailbox: str
    file: str
    flags: frozenset[str]


@dataclass(slots=True)
class Transcript:
    path: Path
    listener: str = ""
    users: list[tuple[str, str]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    catchalls: list[tuple[str, str]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def _header(t: Transcript, n: int, words: list[str]) -> None:
    name, args = words[0], words[1:]
    arity = {"@listener": 1, "@user": 2, "@alias": 2, "@catchall": 2}
    if name in arity and len(args) != arity[name]:
        raise TranscriptError(f"{t.path}:{n}: {name} takes {arity[name]} argument(s)")
    if name == "@listener":
        if args[0] not in LISTENERS:
            raise TranscriptError(f"{t.path}:{n}: unknown listener {args[0]!r}")
        t.listener = args[0]
    elif name == "@user":
        t.users.append((args[0], args[1]))
    elif name == "@alias":
        t.aliases.append((args[0], args[1]))
    elif name == "@catchall":
        t.catchalls.append((args[0], args[1]))
    elif name == "@deliver":
        if len(args) < 3:
            raise TranscriptError(f"{t.path}:{n}: @deliver ADDRESS MAILBOX FILE [FLAGS...]")
        t.deliveries.append(Delivery(args[0], args[1], args[2], frozenset(args[3:])))
    else:
        raise TranscriptError(f"{t.path}:{n}: unknown directive {name}")


def _step(line: str, n: int, origin: str = "") -> Step | None:
    """The step a line describes, or None when it is not a step."""
    if line.startswith("C:"):
        return Step(n, "send", line[3:] if line.startswith("C: ") else line[2:], origin)
    if line.startswith("S:"):
        return Step(n, "expect", line[3:] if line.startswith("S: ") else line[2:], origin)
    if line.startswith("S~"):
        return Step(n, "match", line[2:].strip(), origin)
    if line.strip() in ("!starttls", "!closed"):
        return Step(n, line.strip()[1:], origin=origin)
    return None


_PARAMETER = re.compile(r"\{([a-z][a-z0-9_-]*)\}")


def _include(path: Path, n: int, words: list[str]) -> list[Step]:
    """The steps of ``@include NAME [name=value ...]`` at line ``n`` of ``path``."""
    where = f"{path}:{n}"
    if not words:
        raise TranscriptError(f"{where}: @include NAME [name=value ...]")
    source = path.parent.parent / INCLUDE_DIR / f"{words[0]}.txt"
    if not source.is_file():
        raise TranscriptError(f"{where}: no file {INCLUDE_DIR}/{words[0]}.txt to include")
    if any("=" not in w for w in words[1:]):
        raise TranscriptError(f"{where}: @include parameters are name=value")
    given = dict(w.split("=", 1) for w in words[1:])
    text = source.read_text(encoding="utf-8")
    wanted = set(_PARAMETER.findall(text)) - {"hostname"}
    if wanted != set(given):
        raise TranscriptError(
            f"{where}: {INCLUDE_DIR}/{source.name} takes {sorted(wanted) or 'no parameters'},"
            f" not {sorted(given) or 'none'}"
        )
    steps = []
    for m, raw in enumerate(text.splitlines(), start=1):
        line = _PARAMETER.sub(lambda p: given.get(p[1], p[0]), raw.rstrip("\r\n"))
        if not line.strip() or line.startswith("#"):
            continue
        step = _step(line, n, f"{INCLUDE_DIR}/{source.name}:{m}")
        if step is None:
            raise TranscriptError(f"{source}:{m}: an included file holds steps only: {line!r}")
        steps.append(step)
    return steps


def parse_transcript(path: Path) -> Transcript:
    t = Transcript(path)
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        step = _step(line, n)
        if step is not None:
            t.steps.append(step)
        elif line.startswith("@include"):
            t.steps.extend(_include(path, n, line.split()[1:]))
        elif line.startswith("@"):
            _header(t, n, line.split())
        else:
            raise TranscriptError(f"{path}:{n}: cannot read this line: {line!r}")
    if not t.listener:
        raise TranscriptError(f"{path}: no @listener line")
    return t


# --- the server --------------------------------------------------------------------------------


def make_test_config(data_dir: Path, cert_dir: Path, listeners: list[str]) -> Config:
    """A configuration for tests: loopback ports, cheap hashing, no login delay."""
    ports = dict(zip(listeners, free_ports(len(listeners)), strict=True))
    cert, key = cert_dir / "cert.pem", cert_dir / "key.pem"
    if not cert.exists():
        cert_pem, key_pem = make_self_signed(HOSTNAME)
        cert_dir.mkdir(parents=True, exist_ok=True)
        key.write_bytes(key_pem)
        key.chmod(0o600)
        cert.write_bytes(cert_pem)
    lines = [
        f'hostname = "{HOSTNAME}"',
        "[tls]",
        f'cert = "{cert}"',
        f'key = "{key}"',
        "[auth]",
        "argon2_time_cost = 1",
        "argon2_memory_kib = 8",
        "argon2_parallelism = 1",
        "failure_delay_seconds = 0",
        "[limits]",
        "shutdown_grace_seconds = 2",
        # Port 25 stores the client's bytes as sent; the mail-authentication tests turn the
        # SPF/DKIM/DMARC checks on with a DNS server of their own.
        "[mailauth]",
        "check_inbound = false",
        "[junk]",  # and no junk scoring (X-Spam fields): smtp_server(sections=...) turns it on
        "scoring = false",
    ]
    for name in LISTENERS:
        lines.append(f"[listeners.{name}]")
        if name in ports:
            lines += ["enabled = true", 'address = "127.0.0.1"', f"port = {ports[name]}"]
        else:
            lines.append("enabled = false")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "courriel.toml"
    path.write_text("\n".join(lines) + "\n")
    return config.load(path)


async def populate(store: Store, t: Transcript, messages_dir: Path) -> None:
    hasher = PasswordHasher.for_tests()
    try:
        domains = {a.rpartition("@")[2] for a, _ in t.users} | {d for d, _ in t.catchalls}
        for d in sorted(domains):
            await add_domain_once(store, d)
        for addr, password in t.users:
            await add_user(store, addr, password, hasher)
        for source, target in t.aliases:
            await admin.add_alias(store, source, target)
        for domain, target in t.catchalls:
            await admin.set_catch_all(store, domain, target)
    finally:
        hasher.close()
    for dl in t.deliveries:
        raw = (messages_dir / dl.file).read_bytes()
        user = await store.get_user(dl.address)
        box = await store.get_mailbox(user.id, dl.mailbox) if user else None
        if box is None:
            raise TranscriptError(f"{t.path}: @deliver to unknown {dl.address} {dl.mailbox}")
        await store.append([(box.id, delivered(raw, dl.flags))])


@contextlib.asynccontextmanager
async def running_server(
    cfg: Config,
    *,
    open_store: StoreOpener | None = None,
    factories: dict[str, HandlerFactory] | None = None,
    transport: Transport | None = None,
) -> AsyncIterator[Running]:
    """``courriel.app.serve`` in this event loop until the block ends.

    ``open_store``, ``factories`` and ``transport`` go to ``serve`` as they are: a test may wrap
    the store, start a protocol engine with other options or relay through a scripted
    transport, and nothing else about the server changes.
    """
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            cfg,
            ready=ready.set_result,
            open_store=open_store,
            factories=factories,
            transport=transport,
        )
    )
    first: list[asyncio.Future[Any]] = [task, ready]
    done, _ = await asyncio.wait(first, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it from starting
        raise TranscriptError("server stopped before it was ready")
    if not done:
        task.cancel()
        raise TranscriptError(f"server not ready within {START_TIMEOUT} s")
    running = ready.result()
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, 15)


def client_context(cert_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert_dir / "cert.pem"))
    ctx.check_hostname = True
    return ctx


# --- playing a transcript ------------------------------------------------------------------------


class _SocketClient:
    """The client's side of a loopback connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def readline(self) -> bytes:
        return await self.reader.readline()

    async def read1(self) -> bytes:
        return await self.reader.read(1)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def start_tls(self, ctx: ssl.SSLContext) -> None:
        await self.writer.start_tls(ctx, server_hostname=HOSTNAME)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class _MemoryClient:
    """The client's end of a memory stream pair (``courriel.net.memstream``)."""

    def __init__(self, stream: MemoryStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def readline(self) -> bytes:
        """A line with its LF, or what is left (maybe b"") when the server closed first."""
        while (end := self.buffer.find(b"\n")) < 0:
            data = await self.stream.read()
            if not data:
                end = len(self.buffer) - 1
                break
            self.buffer += data
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def read1(self) -> bytes:
        if not self.buffer:
            self.buffer += await self.stream.read()
        first = bytes(self.buffer[:1])
        del self.buffer[:1]
        return first

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def start_tls(self, ctx: ssl.SSLContext) -> None:
        if self.buffer:
            raise TranscriptError(f"server bytes before the TLS handshake: {bytes(self.buffer)!r}")
        await self.stream.start_tls(ctx, handshake_timeout=STEP_TIMEOUT, server_hostname=HOSTNAME)

    async def close(self) -> None:
        await self.stream.close()


class _Player:
    def __init__(self, t: Transcript, client: _SocketClient | _MemoryClient):
        self.t = t
        self.client = client
        self.kept: dict[str, str] = {"hostname": HOSTNAME}

    def fill(self, text: str, *, regex: bool = False) -> str:
        """``text`` with each ``{name}`` of a kept value replaced (escaped in a regex)."""

        def value(m: re.Match[str]) -> str:
            if m[1] not in self.kept:
                return m[0]
            return re.escape(self.kept[m[1]]) if regex else self.kept[m[1]]

        return _NAME_RE.sub(value, text)

    def fail(self, step: Step, what: str) -> TranscriptError:
        where = f"{self.t.path}:{step.line}"
        if step.origin:
            where += f" ({step.origin})"
        return TranscriptError(f"{where}: {what}")

    async def read_line(self, step: Step) -> str:
        try:
            data = await asyncio.wait_for(self.client.readline(), STEP_TIMEOUT)
        except TimeoutError:
            raise self.fail(step, "the server sent nothing within the timeout") from None
        except (ConnectionError, ssl.SSLError) as e:
            raise self.fail(step, f"connection lost: {e}") from None
        if not data:
            raise self.fail(step, "the server closed the connection")
        if not data.endswith(b"\r\n"):
            raise self.fail(step, f"server line not ended by CRLF: {data!r}")
        return data[:-2].decode("utf-8", "surrogateescape")

    async def expect(self, step: Step) -> None:
        got = await self.read_line(step)
        want = self.fill(step.text, regex=step.kind == "match")
        if step.kind == "expect" and got != want:
            raise self.fail(step, f"expected {want!r}, got {got!r}")
        if step.kind == "match":
            m = re.fullmatch(want, got)
            if m is None:
                raise self.fail(step, f"expected a match of {want!r}, got {got!r}")
            self.kept.update((k, v) for k, v in m.groupdict().items() if v is not None)

    async def closed(self, step: Step) -> None:
        try:
            data = await asyncio.wait_for(self.client.read1(), STEP_TIMEOUT)
        except TimeoutError:
            raise self.fail(step, "the server did not close the connection") from None
        except (ConnectionError, ssl.SSLError):
            return
        if data:
            raise self.fail(step, f"expected the connection closed, got {data!r}...")

    async def play(self, ctx: ssl.SSLContext) -> None:
        steps = self.t.steps
        i = 0
        while i < len(steps):
            step = steps[i]
            if step.kind == "send":
                batch = []
                while i < len(steps) and steps[i].kind == "send":
                    text = self.fill(steps[i].text)
                    batch.append(text.encode("utf-8", "surrogateescape") + b"\r\n")
                    i += 1
                await self.client.send(b"".join(batch))
                continue
            if step.kind in ("expect", "match"):
                await self.expect(step)
            elif step.kind == "starttls":
                await asyncio.wait_for(self.client.start_tls(ctx), STEP_TIMEOUT)
            elif step.kind == "closed":
                await self.closed(step)
            i += 1


async def open_client(
    running: Running, listener: str, ctx: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``listener``, through TLS at once on an implicit-TLS listener."""
    host, port = running.address(listener)
    implicit = LISTENERS[listener][2]
    return await asyncio.wait_for(
        asyncio.open_connection(
            host,
            port,
            ssl=ctx if implicit else None,
            server_hostname=HOSTNAME if implicit else None,
        ),
        STEP_TIMEOUT,
    )


def loopback_forced() -> bool:
    """``COURRIEL_TRANSCRIPT_LOOPBACK=1`` plays every transcript over a loopback socket."""
    return os.environ.get(LOOPBACK_ENV, "") not in ("", "0")


async def play(t: Transcript, running: Running, cert_dir: Path) -> None:
    """Plays the transcript over a loopback socket (TLS as the listener says)."""
    ctx = client_context(cert_dir)
    reader, writer = await open_client(running, t.listener, ctx)
    client = _SocketClient(reader, writer)
    try:
        await _Player(t, client).play(ctx)
    finally:
        await client.close()


async def play_in_process(t: Transcript, running: Running, cert_dir: Path) -> None:
    """Plays the transcript over a memory stream pair: the server's end goes to the listener's
    own handler (``Listener.serve_stream``), as an accepted socket would."""
    listener = next(lst for lst in running.listeners if lst.config.name == t.listener)
    ours, theirs = memory_stream_pair(client_peer=MEMORY_PEER)
    served = asyncio.create_task(listener.serve_stream(theirs, MEMORY_PEER))
    client = _MemoryClient(ours)
    ctx = client_context(cert_dir)
    try:
        if LISTENERS[t.listener][2]:  # implicit TLS: the handshake comes first
            await asyncio.sleep(0)  # the server's end is waiting for the ClientHello
            await asyncio.wait_for(client.start_tls(ctx), STEP_TIMEOUT)
        await _Player(t, client).play(ctx)
    finally:
        await client.close()
        # The session sees the end of the stream and ends; one that does not is cancelled.
        done, _ = await asyncio.wait([served], timeout=STEP_TIMEOUT)
        if not done:
            served.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await served
        elif (error := served.exception()) is not None:
            raise error


async def run_transcript(
    path: Path, work_dir: Path, cert_dir: Path, *, loopback: bool | None = None
) -> None:
    """Parses, sets up a fresh server with the transcript's fixture, and plays it: in-process
    over memory streams, or over a loopback socket when ``loopback`` is True or the environment
    says so (``COURRIEL_TRANSCRIPT_LOOPBACK=1``)."""
    t = parse_transcript(path)
    if loopback is None:
        loopback = loopback_forced()
    cfg = make_test_config(work_dir / "data", cert_dir, [t.listener])
    async with running_server(cfg) as running:
        await populate(running.app.store, t, path.parent.parent / "messages")
        if loopback:
            await play(t, running, cert_dir)
        else:
            await play_in_process(t, running, cert_dir)
