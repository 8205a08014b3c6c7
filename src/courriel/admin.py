"""Account administration: the operations behind ``courriel domain|user|alias`` and the web admin.

Theory of operation
-------------------
Each operation is an async function over a ``Store``. It normalises what a person typed
(``courriel.mail.address``: domains to lower-case A-labels, addresses with their domain so),
checks the preconditions whose failure the store would report less clearly (a user's domain must
exist, an alias may not hide a user), and turns the store's own errors into ``AdminError`` with a
one-line message written for a person.

The checks made here are for the message only. The store stays the authority: when two admins
race, the loser's check passes and the store refuses (``AlreadyExists``, ``InUse``, ``NotFound``),
which is mapped to the same message. Input that can never be right (a malformed address, a size
like "2X") raises ``InputError``, so a command line can tell "you typed it wrong" from "the
server refused".

A new user gets INBOX from the store and the special-use mailboxes (RFC 6154) from here, all
subscribed, so that a mail client set up from scratch finds Sent, Drafts and Trash at once.

``first_run`` makes the demo account of a fresh installation. Its password is returned to the
caller to be shown once; it is never logged and never written to disk (the ``FirstRun`` repr
leaves it out, so it cannot leak through a stray log line either).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from courriel.accounts.passwords import PasswordError, PasswordHasher, prepare_password
from courriel.config import DEFAULT_TOML, Config
from courriel.mail.address import AddressError, normalize_address, normalize_domain, plain_mailbox
from courriel.store.base import (
    Alias,
    AlreadyExists,
    Domain,
    InUse,
    NotFound,
    QuotaUsage,
    Store,
    User,
)

# RFC 6154 §2: the special-use attributes a client looks for to find these mailboxes.
SPECIAL_USE: tuple[tuple[str, str], ...] = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
DEMO_LOCALPART = "demo"
DEMO_FALLBACK_DOMAIN = "example.test"  # RFC 2606 §2: reserved, can never collide with a real one
# Top-level labels a machine may carry in its own name that are not domains mail can be sent to.
_NOT_PUBLIC_TLDS = frozenset({"localhost", "localdomain", "local", "invalid", "arpa"})

MAX_SIZE = 1 << 60  # fits a signed 64-bit column in every backend, with room for sums
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


class AdminError(Exception):
    """An operation was refused; the message is one line meant for a person."""


class InputError(AdminError):
    """The input can never be right (malformed address, domain, size or password)."""


class Hasher(Protocol):
    """What the operations need of ``courriel.accounts.passwords.PasswordHasher``."""

    def hash(self, password: str) -> str: ...


@dataclass(frozen=True, slots=True)
class UserUsage:
    user: User
    usage: QuotaUsage


@dataclass(frozen=True, slots=True)
class FirstRun:
    """The demo account made on the first start; ``password`` is shown once, then forgotten."""

    domain: str
    address: str
    password: str = field(repr=False)


# --- input --------------------------------------------------------------------------------------


def domain_name(text: str) -> str:
    """The A-label form of a domain typed by a person (IDN allowed, no address literal)."""
    try:
        name = normalize_domain(text)
    except AddressError as e:
        raise InputError(f"invalid domain {text!r}: {e}") from None
    if name.startswith("["):
        raise InputError(f"invalid domain {text!r}: an address literal is not a mail domain")
    return name


def address(text: str) -> str:
    """``local@domain`` with the domain as a lower-case A-label (any address, also remote)."""
    try:
        return normalize_address(text)
    except AddressError as e:
        raise InputError(f"invalid address {text!r}: {e}") from None


def local_address(text: str) -> str:
    """An address for one of our own users or aliases: no local part that routes mail on."""
    try:
        parsed = plain_mailbox(text)
    except AddressError as e:
        raise InputError(f"invalid address {text!r}: {e}") from None
    if parsed.is_literal:
        raise InputError(f"invalid address {text!r}: an address literal is not a mail domain")
    return str(parsed)


def domain_of(addr: str) -> str:
    return addr.rpartition("@")[2]


def parse_size(text: str) -> int:
    """Bytes from "2G", "500M", "1.5GiB", "4096"; units are powers of 1024."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise InputError(f"invalid size {text!r}: expected a number with K, M, G or T")
    size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])
    if size <= 0:
        raise InputError(f"invalid size {text!r}: must be more than zero")
    if size > MAX_SIZE:
        raise InputError(f"invalid size {text!r}: larger than {format_size(MAX_SIZE)}")
    return size


def format_size(size: int) -> str:
    """The shortest of "512", "1.5K", "2G" that reads back (``parse_size``) within 5%."""
    for unit in ("T", "G", "M", "K"):
        scale = _SIZE_UNITS[unit]
        if size >= scale:
            value = size / scale
            text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
            return text + unit
    return str(size)


def check_password(password: str) -> None:
    """Refuses what ``PasswordHasher`` would refuse, before anything is written or asked."""
    try:
        prepare_password(password)  # RFC 8265 §4.2: empty or control characters are refused
    except PasswordError as e:
        raise InputError(str(e)) from None


# --- domains ------------------------------------------------------------------------------------


async def add_domain(store: Store, name: str) -> Domain:
    """Adds the domain and its DKIM keys (``courriel.admin_dkim``)."""
    alabel = domain_name(name)
    try:
        domain = await store.add_domain(alabel)
    except AlreadyExists:
        raise AdminError(f"domain {alabel} already exists") from None
    # Imported here: admin_dkim builds on this module. Should this fail, the server gives the
    # domain its keys at its next start (admin_dkim.ensure_keys).
    from courriel.admin_dkim import create_keys

    await create_keys(store, domain.name)
    return domain


async def list_domains(store: Store) -> list[Domain]:
    return sorted(await store.list_domains(), key=lambda d: d.name)


async def remove_domain(store: Store, name: str) -> None:
    alabel = domain_name(name)
    users = await store.list_users(alabel)
    aliases = await store.list_aliases(alabel)
    if users or aliases:
        raise AdminError(_in_use(alabel, len(users), len(aliases)))
    try:
        await store.remove_domain(alabel)
    except NotFound:
        raise AdminError(f"unknown domain {alabel}") from None
    except InUse:
        # Someone added a user between the check and the removal.
        users, aliases = await store.list_users(alabel), await store.list_aliases(alabel)
        raise AdminError(_in_use(alabel, len(users), len(aliases))) from None


def _in_use(domain: str, users: int, aliases: int) -> str:
    parts = []
    if users:
        parts.append(f"{users} user{'' if users == 1 else 's'}")
    if aliases:
        parts.append(f"{aliases} alias{'' if aliases == 1 else 'es'}")
    held = " and ".join(parts) or "accounts"
    return f"domain {domain} still has {held}; remove them first"


async def set_catch_all(store: Store, domain: str, target: str | None) -> str | None:
    """Mail to unknown local parts of ``domain`` goes to ``target``; ``None`` turns it off.

    Returns the target as stored (a local user's address as that user was created)."""
    alabel = domain_name(domain)
    await _require_domain(store, alabel)
    dest = None
    if target is not None:
        dest = await _local_target(store, address(target))
    try:
        await store.set_catch_all(alabel, dest)
    except NotFound:
        raise AdminError(f"unknown domain {alabel}") from None
    return dest


async def _require_domain(store: Store, alabel: str) -> Domain:
    d = await store.get_domain(alabel)
    if d is None:
        raise AdminError(f"unknown domain {alabel}")
    return d


async def _local_target(store: Store, dest: str) -> str:
    """``dest`` as stored; a target in one of our domains must be someone, since a typo there
    would bounce all the mail sent to it."""
    if await store.get_domain(domain_of(dest)) is None:
        return dest  # a remote address: its own server decides
    user = await store.get_user(dest)
    if user is not None:
        return user.address  # the spelling the user was created with
    aliases = await _aliases_of(store, dest)
    if aliases:
        return aliases[0].source
    raise AdminError(f"{dest} is in a local domain but is neither a user nor an alias")


# --- users --------------------------------------------------------------------------------------


async def check_new_user(store: Store, addr: str) -> str:
    """The normalised address if ``add_user`` could create it now; else why not."""
    norm = local_address(addr)
    await _require_domain(store, domain_of(norm))
    if await store.get_user(norm) is not None:
        raise AdminError(f"user {norm} already exists")
    if await _aliases_of(store, norm):
        raise AdminError(f"{norm} is an alias; remove the alias first")
    return norm


async def add_user(
    store: Store, hasher: Hasher, addr: str, password: str, *, quota_bytes: int | None = None
) -> User:
    """Creates the user, INBOX, and the special-use mailboxes, all subscribed."""
    norm = await check_new_user(store, addr)
    check_password(password)
    if quota_bytes is not None and quota_bytes <= 0:
        raise InputError("the quota must be more than zero bytes")
    # Hashing costs tens of milliseconds of CPU by design; keep the event loop free meanwhile.
    password_hash = await asyncio.to_thread(hasher.hash, password)
    try:
        user = await store.add_user(norm, password_hash, quota_bytes=quota_bytes)
    except AlreadyExists:
        raise AdminError(f"user {norm} already exists") from None
    except NotFound:
        raise AdminError(f"unknown domain {domain_of(norm)}") from None
    try:
        await _create_special_mailboxes(store, user)
    except BaseException:
        # Half a user (no Sent, no Trash) is worse than none: take it back and report.
        with contextlib.suppress(Exception):
            await store.remove_user(user.address)
        raise
    return user


async def _create_special_mailboxes(store: Store, user: User) -> None:
    for name, attribute in SPECIAL_USE:
        # RFC 6154 §5.1: the attribute is set when the mailbox is created.
        with contextlib.suppress(AlreadyExists):
            await store.create_mailbox(user.id, name, special_use=attribute)
    for name in ("INBOX", *(name for name, _ in SPECIAL_USE)):
        await store.set_subscribed(user.id, name, True)


async def require_user(store: Store, addr: str) -> User:
    norm = address(addr)
    user = await store.get_user(norm)
    if user is None:
        raise AdminError(f"unknown user {norm}")
    return user


async def set_password(store: Store, hasher: Hasher, addr: str, password: str) -> None:
    user = await require_user(store, addr)
    check_password(password)
    password_hash = await asyncio.to_thread(hasher.hash, password)
    try:
        await store.set_password(user.address, password_hash)
    except NotFound:
        raise AdminError(f"unknown user {user.address}") from None
    await store.remove_sessions(user.id)  # signed out of the web admin everywhere


async def set_quota(store: Store, addr: str, quota_bytes: int | None) -> None:
    norm = address(addr)
    if quota_bytes is not None and quota_bytes <= 0:
        raise InputError("the quota must be more than zero bytes")
    try:
        await store.set_quota(norm, quota_bytes)
    except NotFound:
        raise AdminError(f"unknown user {norm}") from None


async def set_tag_folders(store: Store, addr: str, on: bool) -> None:
    """Whether mail for ``user+tag@domain`` goes into the user's folder ``tag`` (when it exists)."""
    norm = address(addr)
    try:
        await store.set_tag_folders(norm, on)
    except NotFound:
        raise AdminError(f"unknown user {norm}") from None


KEEP = -1  # set_count_quota: leave this limit as it is


async def set_count_quota(
    store: Store, addr: str, *, messages: int | None = KEEP, mailboxes: int | None = KEEP
) -> None:
    """Limits the number of messages and of mailboxes (RFC 9208 MESSAGE, MAILBOX); None lifts
    a limit, ``KEEP`` leaves it."""
    norm = address(addr)
    user = await store.get_user(norm)
    if user is None:
        raise AdminError(f"unknown user {norm}")
    usage = await store.quota_usage(user.id)
    messages = usage.limit_messages if messages == KEEP else messages
    mailboxes = usage.limit_mailboxes if mailboxes == KEEP else mailboxes
    if (messages is not None and messages < 0) or (mailboxes is not None and mailboxes < 0):
        raise InputError("a limit is a number of zero or more, or none")
    try:
        await store.set_count_quota(norm, messages, mailboxes)
    except NotFound:
        raise AdminError(f"unknown user {norm}") from None


async def set_junk_threshold(store: Store, addr: str, threshold: float | None) -> None:
    """The user's own junk score threshold (``courriel.junk``); None: the server's."""
    norm = address(addr)
    if threshold is not None and not 0 < threshold <= 1000:
        raise InputError("the junk threshold must be more than 0 and at most 1000")
    user = await store.get_user(norm)
    if user is None:
        raise AdminError(f"unknown user {norm}")
    await store.set_junk_threshold(user.id, threshold)


async def remove_user(store: Store, addr: str, *, keep_an_admin: bool = False) -> None:
    """Removes the user with all their mail; there is no undo. ``keep_an_admin``: the store
    raises ``LastAdmin`` rather than remove the only administrator."""
    norm = address(addr)
    try:
        await store.remove_user(norm, keep_an_admin=keep_an_admin)
    except NotFound:
        raise AdminError(f"unknown user {norm}") from None


async def list_users(store: Store, domain: str | None = None) -> list[UserUsage]:
    alabel = None
    if domain is not None:
        alabel = domain_name(domain)
        await _require_domain(store, alabel)
    users = sorted(await store.list_users(alabel), key=lambda u: _sort_key(u.address))
    return [UserUsage(u, await store.quota_usage(u.id)) for u in users]


def _sort_key(addr: str) -> tuple[str, str]:
    local, _, dom = addr.rpartition("@")
    return dom, local.casefold()


# --- aliases ------------------------------------------------------------------------------------


async def add_alias(store: Store, source: str, target: str) -> Alias:
    """Mail to ``source`` (in a local domain) goes to ``target``; one source may have several."""
    src, dest = local_address(source), address(target)
    if src.casefold() == dest.casefold():
        raise InputError(f"an alias cannot point to itself ({src})")
    await _require_domain(store, domain_of(src))
    if await store.get_user(src) is not None:
        raise AdminError(f"{src} is a user; an alias cannot take its place")
    dest = await _local_target(store, dest)
    if any(a.target.casefold() == dest.casefold() for a in await _aliases_of(store, src)):
        raise AdminError(f"alias {src} -> {dest} already exists")
    try:
        return await store.add_alias(src, dest)
    except AlreadyExists:
        raise AdminError(f"alias {src} -> {dest} already exists") from None
    except NotFound:
        raise AdminError(f"unknown domain {domain_of(src)}") from None


async def _aliases_of(store: Store, src: str) -> list[Alias]:
    wanted = src.casefold()
    return [a for a in await store.list_aliases(domain_of(src)) if a.source.casefold() == wanted]


async def list_aliases(store: Store, domain: str | None = None) -> list[Alias]:
    alabel = None
    if domain is not None:
        alabel = domain_name(domain)
        await _require_domain(store, alabel)
    aliases = await store.list_aliases(alabel)
    return sorted(aliases, key=lambda a: (*_sort_key(a.source), a.target.casefold()))


async def remove_alias(store: Store, source: str, target: str | None = None) -> None:
    """Removes one target of ``source``, or the whole alias when ``target`` is None."""
    src = address(source)
    dest = None if target is None else address(target)
    existing = await _aliases_of(store, src)
    if dest is not None:
        existing = [a for a in existing if a.target.casefold() == dest.casefold()]
    if not existing:
        raise AdminError(f"unknown alias {src}" + ("" if dest is None else f" -> {dest}"))
    try:
        await store.remove_alias(existing[0].source, None if dest is None else existing[0].target)
    except NotFound:
        raise AdminError(f"unknown alias {src}") from None


# --- first run ----------------------------------------------------------------------------------


def demo_domain(hostname: str) -> str:
    """The machine's own name when mail could be addressed to it, else the reserved fallback."""
    try:
        name = normalize_domain(hostname)
    except AddressError:
        return DEMO_FALLBACK_DOMAIN
    labels = name.split(".")
    if len(labels) < 2 or labels[-1] in _NOT_PUBLIC_TLDS or labels[-1].isdigit():
        return DEMO_FALLBACK_DOMAIN
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(name)
        return DEMO_FALLBACK_DOMAIN
    return name


async def first_run(cfg: Config, store: Store, hasher: Hasher | None = None) -> FirstRun | None:
    """On an empty store, makes a demo domain and ``demo@`` it; else does nothing."""
    if await store.list_domains():
        return None
    domain = demo_domain(cfg.hostname)
    try:
        await store.add_domain(domain)
    except AlreadyExists:
        return None  # another instance starting at the same moment did it
    password = secrets.token_urlsafe(15)
    user = await add_user(
        store, hasher or default_hasher(cfg), f"{DEMO_LOCALPART}@{domain}", password
    )
    return FirstRun(domain=domain, address=user.address, password=password)


def default_hasher(cfg: Config) -> Hasher:
    """The production hasher: argon2id with the costs from ``[auth]``."""
    return PasswordHasher.from_config(cfg.auth)


def ensure_data_dir(cfg: Config) -> None:
    """Creates the data directory, readable by its owner only (it holds mail and keys)."""
    for d in (cfg.data_dir, cfg.path.parent):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_default_config(cfg: Config) -> bool:
    """Writes the commented default configuration where ``cfg`` was looked for, if none is there.

    Returns whether it wrote one. The file appears whole or not at all, and one already there
    (written by an instance starting at the same moment, or by hand) is never replaced.
    """
    ensure_data_dir(cfg)
    if cfg.path.exists():
        return False
    fd, tmp = tempfile.mkstemp(prefix=".courriel-", suffix=".toml", dir=cfg.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(DEFAULT_TOML)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, cfg.path)  # unlike rename, link refuses to replace an existing file
        except FileExistsError:
            return False
    finally:
        Path(tmp).unlink()
    _fsync_dir(cfg.path.parent)
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
