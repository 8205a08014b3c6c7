"""Change events shared by every process that opens one SQLite data directory: unix datagrams.

Theory of operation
-------------------
``SocketEvents`` is ``LocalEvents`` (per-user fan-out, bounded backlogs, RESYNC on overflow) plus
a socket per process. Several processes -- the workers of ``courriel serve``, the admin CLI --
open the same database; a change committed in one must reach IDLE sessions in the others.

*Receiving.* The first ``subscribe`` of a process binds a unix datagram socket
``<run>/events-<pid>-<token>.sock`` (``<run>`` is ``<data_dir>/run``, mode 0700; the socket is
0600) and reads it from the event loop (``add_reader``). A process that never subscribes (the
CLI) binds nothing, so nobody sends it anything. The socket is bound before ``subscribe``
returns, and a session subscribes before it reads the store, so every change that commits after
that read is sent to it (see *Peers*).

*Publishing.* ``publish`` hands the change to this process's subscribers at once (no syscall)
and queues it for the peers; the queue is sent once per turn of the event loop, many changes per
datagram (one ``encode_change`` per line), one non-blocking ``send`` per peer. Changes are
published after their commit, so a peer never hears of a change that was rolled back.

*Peers* are the other ``events-*.sock`` files in ``<run>``, each reached through a socket of our
own ``connect``-ed to it. The listing is cached and checked with one ``stat`` of the directory per
send: it is read again when the directory's mtime changed, or while that mtime is less than
``_SETTLED`` seconds older than the last listing (timestamps are coarse, so a socket bound just
after a listing may leave the mtime as it was; see git's "racy" index entries). So a socket
bound before a commit is always among the peers its publisher sends to.

*A full peer.* Linux queues at most ``net.unix.max_dgram_qlen`` (10) datagrams per receiver; a
stalled peer answers ``EAGAIN``. The publisher never waits: it remembers the users whose changes
that peer missed and watches the socket (``add_writer``: a connected datagram socket becomes
writable when the receiver has room); then it sends one RESYNC per such user (or ``*``,
"resynchronise everyone", when there are many). Changes are hints (``courriel.store.events``),
so a RESYNC costs the peer's sessions one reread and loses nothing.

*Dead peers.* A socket file whose process died answers ``ECONNREFUSED``; whoever notices unlinks
it. Names carry a random token and are never reused, so that unlink cannot hit a live socket.
``close`` unlinks this process's own socket.

Ordering: changes from one process arrive in the order it published them (commit order);
changes from different processes may interleave. Sessions reread by MODSEQ, so that is enough.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path

from courriel.store.base import Change
from courriel.store.events import (
    DEFAULT_BACKLOG,
    LocalEvents,
    LocalSubscription,
    decode_change,
    encode_change,
    resync,
)

_log = logging.getLogger(__name__)

PREFIX = "events-"
SUFFIX = ".sock"
RESYNC_ALL = b"*"
# A listing is trusted once the directory has not changed for this long before it was taken.
_SETTLED = 1.0
_DATAGRAM = 60 * 1024  # bytes per datagram, well below the default socket send buffer
_RESYNC_USERS = 256  # more owed users than this: one "resynchronise everyone"
_SUN_PATH = 100  # sockaddr_un holds 108 bytes; longer paths go through /proc/self/fd
_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET, errno.ENOTCONN)
# The user a change line is for, as ``encode_change`` writes it first: read without decoding
# the line, so a change for a user nobody here watches costs no JSON parse.
_USER = re.compile(rb'\{"u":(\d{1,19})[,}]')


class _Peer:
    """Our connected socket to one other process's events socket."""

    __slots__ = ("name", "owed", "sock")

    def __init__(self, name: str, sock: socket.socket) -> None:
        self.name = name
        self.sock = sock
        self.owed: set[int] | None = None  # users whose changes this peer missed


class SocketEvents(LocalEvents):
    """``Events`` for the processes sharing one data directory; see the module docstring."""

    def __init__(self, run_dir: Path, *, backlog: int = DEFAULT_BACKLOG) -> None:
        super().__init__(backlog=backlog)
        self.run_dir = run_dir
        self.sent = 0  # datagrams sent, for tests and monitoring
        self.resyncs_owed = 0  # times a full peer made us fall back to RESYNC
        self._name: str | None = None  # our bound socket's file name
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[Change] = []
        self._flush_scheduled = False
        self._peers: dict[str, _Peer] = {}
        self._listed_mtime = -1
        self._listed_at = 0
        self._dir_fd: int | None = None
        self._closed = False

    # --- paths ---------------------------------------------------------------------------

    def _address(self, name: str) -> str:
        """The address of ``name`` in the run directory, short enough for sockaddr_un."""
        full = str(self.run_dir / name)
        if len(full) <= _SUN_PATH:
            return full
        if self._dir_fd is None:
            self._dir_fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    @property
    def socket_path(self) -> Path | None:
        """This process's bound socket, once something subscribed."""
        return None if self._name is None else self.run_dir / self._name

    # --- subscribing: bind our socket ----------------------------------------------------

    async def subscribe(self, user_id: int) -> LocalSubscription:
        if self._sock is None and not self._closed:
            try:
                self._bind()
            except OSError as e:  # sessions still work; they hear only this process's changes
                _log.error("cannot receive change events from other processes: %s", e)
        return await super().subscribe(user_id)

    def _bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(self._address(name))
            (self.run_dir / name).chmod(stat.S_IRUSR | stat.S_IWUSR)
        except BaseException:
            sock.close()
            raise
        self._sock, self._name = sock, name
        self._loop.add_reader(sock.fileno(), self._receive)

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(_DATAGRAM + 1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # pragma: no cover - a bound datagram socket does not fail
                _log.warning("change events socket: %s", e)
                return
            for line in data.split(b"\n"):
                self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        if not line:
            return
        if line == RESYNC_ALL:
            for user_id in list(self._subs):
                self.publish_nowait(resync(user_id))
            return
        user = _USER.match(line)
        if user is not None and int(user.group(1)) not in self._subs:
            return  # no session of this process watches that user
        try:
            change = decode_change(line)
        except (ValueError, KeyError, TypeError):
            _log.warning("ignored a malformed change event: %r", line[:200])
            return
        self.publish_nowait(change)

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, change: Change) -> None:
        self.publish_nowait(change)
        if self._closed:
            return
        self._outbox.append(change)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Sends what was published during this turn of the loop to every peer."""
        self._flush_scheduled = False
        changes, self._outbox = self._outbox, []
        if not changes or self._closed:
            return
        datagrams = _pack([encode_change(c).encode() for c in changes])
        users = {c.user_id for c in changes}
        for peer in self._current_peers():
            if peer.owed is not None:
                peer.owed |= users  # still waiting for room: a RESYNC will cover these
                continue
            for datagram in datagrams:
                if not self._send(peer, datagram, users):
                    break

    def _send(self, peer: _Peer, datagram: bytes, users: set[int]) -> bool:
        """One datagram to one peer; False when the peer is full or gone (stop sending it)."""
        try:
            peer.sock.send(datagram)
        except (BlockingIOError, InterruptedError):
            self._owe(peer, users)
            return False
        except OSError as e:
            if e.errno in _GONE:
                self._forget(peer, unlink=e.errno != errno.ENOENT)
            else:
                _log.warning("could not send change events to %s: %s", peer.name, e)
            return False
        self.sent += 1
        return True

    def _owe(self, peer: _Peer, users: set[int]) -> None:
        self.resyncs_owed += 1
        peer.owed = set(users)
        assert self._loop is not None
        self._loop.add_writer(peer.sock.fileno(), self._repay, peer)

    def _repay(self, peer: _Peer) -> None:
        """The full peer has room again: one RESYNC for each user whose changes it missed."""
        owed = peer.owed or set()
        if len(owed) > _RESYNC_USERS:
            lines = [RESYNC_ALL]
        else:
            lines = [encode_change(resync(u)).encode() for u in sorted(owed)]
        try:
            for datagram in _pack(lines):
                peer.sock.send(datagram)
                self.sent += 1
        except (BlockingIOError, InterruptedError):
            return  # full again: stay registered, try at the next chance
        except OSError as e:
            self._forget(peer, unlink=e.errno in _GONE and e.errno != errno.ENOENT)
            return
        peer.owed = None
        assert self._loop is not None
        self._loop.remove_writer(peer.sock.fileno())

    # --- peers ---------------------------------------------------------------------------

    def _current_peers(self) -> list[_Peer]:
        try:
            mtime = self.run_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        settled = self._listed_at - self._listed_mtime > _SETTLED * 1e9
        if mtime != self._listed_mtime or not settled:
            self._relist(mtime)
        return list(self._peers.values())

    def _relist(self, mtime: int) -> None:
        listed_at = time.time_ns()  # before reading: a later change must make us read again
        try:
            names = {
                p.name
                for p in self.run_dir.iterdir()
                if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX) and p.name != self._name
            }
        except FileNotFoundError:
            names = set()
        for name in set(self._peers) - names:
            self._forget(self._peers[name], unlink=False)
        for name in names - set(self._peers):
            peer = self._connect(name)
            if peer is not None:
                self._peers[name] = peer
        self._listed_mtime, self._listed_at = mtime, listed_at

    def _connect(self, name: str) -> _Peer | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(self._address(name))
        except OSError as e:
            sock.close()
            if e.errno == errno.ECONNREFUSED:  # its process is gone: nobody reads it
                self._unlink(name)
            return None
        return _Peer(name, sock)

    def _forget(self, peer: _Peer, *, unlink: bool) -> None:
        if self._peers.get(peer.name) is peer:
            del self._peers[peer.name]
        if peer.owed is not None and self._loop is not None:
            self._loop.remove_writer(peer.sock.fileno())
        peer.sock.close()
        if unlink:
            self._unlink(peer.name)

    def _unlink(self, name: str) -> None:
        (self.run_dir / name).unlink(missing_ok=True)

    # --- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._flush()  # what was published before close still goes out
        self._closed = True
        for peer in list(self._peers.values()):
            self._forget(peer, unlink=False)
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._name is not None:
            self._unlink(self._name)
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
        await super().close()


def _pack(lines: list[bytes]) -> list[bytes]:
    """Lines joined by newlines into datagrams of at most ``_DATAGRAM`` bytes."""
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > _DATAGRAM:
            out.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        out.append(b"\n".join(current))
    return out
