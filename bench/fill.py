"""Putting the same accounts and the same mail into every server before it is measured.

Theory of operation
-------------------
A workload asks for accounts and for mailbox contents (``Item``: raw message and flags). They go
in the fastest honest way each server allows, outside the measurement:

* courriel: through its ``Store`` API, as ``courriel serve`` would find them -- the domain, the
  users with their standard mailboxes (``courriel.admin.add_user``), and messages appended in
  batches of ``BATCH`` with the meta parsed once per distinct message (``courriel.mail.message``).
  The server is not running meanwhile, so nothing else writes to the database.
* Dovecot: Maildir files written directly into ``cur/`` with the ``S=`` (size) and ``W=`` (size
  with CRLF) fields and the flag letters Dovecot itself writes (Maildir++ ``:2,``), with LF line
  ends as Postfix's ``virtual`` agent leaves them, owned by ``nobody``.

Both servers check passwords against the same argon2id hash (``shared_hash``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.servers import DOMAIN, PASSWORD, make_dirs
from bench.servers.courriel import HASH_MEMORY_KIB, HASH_PARALLELISM, HASH_TIME_COST
from courriel import admin, config
from courriel.accounts.passwords import PasswordHasher
from courriel.mail.message import parse
from courriel.store.base import NewMessage, Store
from courriel.store.open import open_store

BATCH = 500
_BASE_DATE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_BASE_TIME = 1767600000  # the Maildir file name's time part, fixed so names are reproducible
# Maildir++ info letters, in the ASCII order the format requires.
_MAILDIR_FLAGS: tuple[tuple[str, str], ...] = (
    ("\\Draft", "D"),
    ("\\Flagged", "F"),
    ("\\Answered", "R"),
    ("\\Seen", "S"),
    ("\\Deleted", "T"),
)


@dataclass(frozen=True, slots=True)
class Item:
    raw: bytes
    flags: frozenset[str] = frozenset()


def shared_hash() -> str:
    """The argon2id hash of ``PASSWORD`` that both courriel and Dovecot verify."""
    hasher = PasswordHasher(
        time_cost=HASH_TIME_COST,
        memory_kib=HASH_MEMORY_KIB,
        parallelism=HASH_PARALLELISM,
        max_threads=1,
    )
    try:
        return hasher.hash(PASSWORD)
    finally:
        hasher.close()


class _Fixed:
    """A hasher that hands out one precomputed hash: every account shares the password."""

    def __init__(self, password_hash: str) -> None:
        self._hash = password_hash

    def hash(self, password: str) -> str:
        return self._hash


def address(local: str) -> str:
    return f"{local}@{DOMAIN}"


def maildir_info(flags: frozenset[str]) -> str:
    return "2," + "".join(letter for flag, letter in _MAILDIR_FLAGS if flag in flags)


def maildir_name(index: int, item: Item) -> str:
    lf = len(item.raw) - item.raw.count(b"\r\n")
    return (
        f"{_BASE_TIME + index}.M{index}P1.bench,S={lf},W={len(item.raw)}:{maildir_info(item.flags)}"
    )


def maildir(vmail: Path, addr: str) -> Path:
    local, _, domain = addr.partition("@")
    return vmail / domain / local


def create_maildir(vmail: Path, addr: str, uid: int, gid: int) -> Path:
    base = maildir(vmail, addr)
    for sub in ("cur", "new", "tmp"):
        make_dirs(base / sub, uid, gid, 0o700)
    return base


def write_maildir(base: Path, items: Sequence[Item], uid: int, gid: int) -> None:
    """Writes ``items`` into ``base/cur`` as delivered-and-seen-by-a-client Maildir files."""
    cur = base / "cur"
    for i, item in enumerate(items):
        path = cur / maildir_name(i, item)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, item.raw.replace(b"\r\n", b"\n"))
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)


async def fill_courriel(
    config_path: Path,
    accounts: Sequence[str],
    mail: Mapping[str, Sequence[Item]],
    password_hash: str,
) -> None:
    """Creates the domain, ``accounts`` and their INBOX contents in courriel's store."""
    cfg = config.load(config_path)
    admin.ensure_data_dir(cfg)
    store = await open_store(cfg)
    try:
        await store.add_domain(DOMAIN)
        hasher = _Fixed(password_hash)
        for addr in accounts:
            await admin.add_user(store, hasher, addr, PASSWORD)
        metas: dict[bytes, bytes] = {}
        for addr, items in mail.items():
            await _append_all(store, addr, items, metas)
    finally:
        await store.close()


async def _append_all(
    store: Store, addr: str, items: Sequence[Item], metas: dict[bytes, bytes]
) -> None:
    user = await store.get_user(addr)
    if user is None:
        raise LookupError(f"{addr} was not created")
    inbox = await store.get_mailbox(user.id, "INBOX")
    if inbox is None:
        raise LookupError(f"{addr} has no INBOX")
    for start in range(0, len(items), BATCH):
        batch = []
        for i, item in enumerate(items[start : start + BATCH], start):
            meta = metas.get(item.raw)
            if meta is None:
                meta = metas[item.raw] = parse(item.raw).to_bytes()
            when = _BASE_DATE + timedelta(seconds=i)
            batch.append((inbox.id, NewMessage(item.raw, when, item.flags, meta)))
        await store.append(batch)
