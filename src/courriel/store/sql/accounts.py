"""Transaction scripts for domains, users and aliases.

Theory of operation
-------------------
Addresses are matched on ``address_key`` (the address in lower case), so lookups ignore case in
both parts while the address is kept as created. Uniqueness is enforced by the database
(``ON CONFLICT DO NOTHING RETURNING``), so two racing creations give one ``AlreadyExists``, never
two rows. Removing a user removes their mailboxes, messages and subscriptions in one transaction
and reports the bodies that lost their last reference.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from courriel.store.base import (
    AddressLookup,
    Alias,
    AlreadyExists,
    Change,
    ChangeKind,
    Domain,
    InUse,
    LastAdmin,
    NotFound,
    User,
)
from courriel.store.sql.core import (
    INBOX,
    Done,
    Query,
    Row,
    Script,
    address_key,
    adjust_blobs,
    date_of,
    domain_of,
    drop_mailbox,
    insert_mailbox,
    lock_mailbox,
)

DOMAIN_COLS = "id, name, catch_all"
USER_COLS = "id, address, password_hash, quota_bytes, created, is_admin"


def domain_row(row: Row) -> Domain:
    return Domain(row[0], row[1], row[2])


def user_row(row: Row) -> User:
    return User(row[0], row[1], row[2], row[3], date_of(row[4]), bool(row[5]))


def add_domain(name: str) -> Script[Done[Domain]]:
    rows = yield Query(
        "INSERT INTO domains (name) VALUES (?) ON CONFLICT (name) DO NOTHING RETURNING id",
        (name.lower(),),
    )
    if not rows:
        raise AlreadyExists(f"domain {name} exists")
    return Done(Domain(rows[0][0], name.lower()))


def get_domain(name: str) -> Script[Domain | None]:
    rows = yield Query(f"SELECT {DOMAIN_COLS} FROM domains WHERE name = ?", (name.lower(),))  # noqa: S608
    return domain_row(rows[0]) if rows else None


def list_domains() -> Script[list[Domain]]:
    rows = yield Query(f"SELECT {DOMAIN_COLS} FROM domains ORDER BY name")  # noqa: S608
    return [domain_row(r) for r in rows]


def _domain_id(name: str) -> Script[int]:
    rows = yield Query("SELECT id FROM domains WHERE name = ?", (name,))
    if not rows:
        raise NotFound(f"no domain {name}")
    return int(rows[0][0])


def remove_domain(name: str) -> Script[Done[None]]:
    domain_id = yield from _domain_id(name.lower())
    users = yield Query("SELECT 1 FROM users WHERE domain_id = ? LIMIT 1", (domain_id,))
    aliases = yield Query("SELECT 1 FROM aliases WHERE domain_id = ? LIMIT 1", (domain_id,))
    if users or aliases:
        raise InUse(f"domain {name} still has users or aliases")
    yield Query("DELETE FROM domains WHERE id = ?", (domain_id,), False)
    return Done(None)


def set_catch_all(domain: str, target: str | None) -> Script[Done[None]]:
    rows = yield Query(
        "UPDATE domains SET catch_all = ? WHERE name = ? RETURNING id", (target, domain.lower())
    )
    if not rows:
        raise NotFound(f"no domain {domain}")
    return Done(None)


def add_user(
    address: str, password_hash: str, quota_bytes: int | None, now: datetime
) -> Script[Done[User]]:
    domain_id = yield from _domain_id(domain_of(address))
    rows = yield Query(
        "INSERT INTO users (domain_id, address, address_key, password_hash, quota_bytes, created)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address_key) DO NOTHING RETURNING id",
        (domain_id, address, address_key(address), password_hash, quota_bytes, now.isoformat()),
    )
    if not rows:
        raise AlreadyExists(f"user {address} exists")
    user = User(rows[0][0], address, password_hash, quota_bytes, now)
    inbox = yield from insert_mailbox(user.id, INBOX, None, int(now.timestamp()))
    return Done(user, (Change(user.id, inbox.id, ChangeKind.MAILBOX_CREATED, name=INBOX),))


def get_user(address: str) -> Script[User | None]:
    rows = yield Query(
        f"SELECT {USER_COLS} FROM users WHERE address_key = ?",  # noqa: S608
        (address_key(address),),
    )
    return user_row(rows[0]) if rows else None


def get_user_by_id(user_id: int) -> Script[User | None]:
    rows = yield Query(f"SELECT {USER_COLS} FROM users WHERE id = ?", (user_id,))  # noqa: S608
    return user_row(rows[0]) if rows else None


def list_users(domain: str | None) -> Script[list[User]]:
    if domain is None:
        rows = yield Query(f"SELECT {USER_COLS} FROM users ORDER BY address_key")  # noqa: S608
    else:
        rows = yield Query(
            f"SELECT {USER_COLS} FROM users WHERE domain_id IN"  # noqa: S608
            " (SELECT id FROM domains WHERE name = ?) ORDER BY address_key",
            (domain.lower(),),
        )
    return [user_row(r) for r in rows]


def update_user(address: str, column: str, value: object) -> Script[Done[None]]:
    assert column in ("password_hash", "quota_bytes")
    rows = yield Query(
        f"UPDATE users SET {column} = ? WHERE address_key = ? RETURNING id",  # noqa: S608
        (value, address_key(address)),
    )
    if not rows:
        raise NotFound(f"no user {address}")
    return Done(None)


def set_count_quota(
    address: str, messages: int | None, mailboxes: int | None
) -> Script[Done[None]]:
    rows = yield Query(
        "UPDATE users SET quota_messages = ?, quota_mailboxes = ? WHERE address_key = ?"
        " RETURNING id",
        (messages, mailboxes, address_key(address)),
    )
    if not rows:
        raise NotFound(f"no user {address}")
    return Done(None)


def refuse_last_admin(address: str) -> Script[None]:
    """``LastAdmin`` when ``address`` is the only administrator. The administrators' rows are
    written (to themselves) first: on PostgreSQL that locks them, so a concurrent transaction
    doing the same waits and then sees this one's change, never two that each count on the
    other; SQLite runs one write transaction at a time anyway."""
    admins = yield Query("UPDATE users SET is_admin = is_admin WHERE is_admin <> 0 RETURNING id")
    key = yield Query("SELECT id FROM users WHERE address_key = ?", (address_key(address),))
    if key and len(admins) == 1 and admins[0][0] == key[0][0]:
        raise LastAdmin(f"{address} is the only administrator")


def remove_user(address: str, keep_an_admin: bool = False) -> Script[Done[None]]:
    if keep_an_admin:
        yield from refuse_last_admin(address)
    rows = yield Query("SELECT id FROM users WHERE address_key = ?", (address_key(address),))
    if not rows:
        raise NotFound(f"no user {address}")
    user_id = rows[0][0]
    boxes = yield Query("SELECT id FROM mailboxes WHERE user_id = ? ORDER BY id", (user_id,))
    blobs: Counter[str] = Counter()
    changes = []
    for (mailbox_id,) in boxes:
        yield from lock_mailbox(mailbox_id)
        for _, blob_id in (yield from drop_mailbox(mailbox_id)):
            blobs[blob_id] -= 1
        changes.append(Change(user_id, mailbox_id, ChangeKind.MAILBOX_DELETED))
    freed = yield from adjust_blobs(dict(blobs), {})
    yield Query("DELETE FROM subscriptions WHERE user_id = ?", (user_id,), False)
    # RFC 4314 grants to the user: a later user of the same address must inherit none.
    yield Query("DELETE FROM acl WHERE grantee_id = ?", (user_id,), False)
    yield Query("DELETE FROM metadata WHERE owner_id = ?", (user_id,), False)  # RFC 5464
    yield Query("DELETE FROM private_seen WHERE user_id = ?", (user_id,), False)
    yield Query("DELETE FROM users WHERE id = ?", (user_id,), False)
    return Done(None, tuple(changes), freed)


def add_alias(source: str, target: str) -> Script[Done[Alias]]:
    domain_id = yield from _domain_id(domain_of(source))
    rows = yield Query(
        "INSERT INTO aliases (domain_id, source, source_key, target) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (source_key, target) DO NOTHING RETURNING id",
        (domain_id, source, address_key(source), target),
    )
    if not rows:
        raise AlreadyExists(f"alias {source} -> {target} exists")
    return Done(Alias(source, target))


def list_aliases(domain: str | None) -> Script[list[Alias]]:
    if domain is None:
        rows = yield Query("SELECT source, target FROM aliases ORDER BY source_key, target")
    else:
        rows = yield Query(
            "SELECT source, target FROM aliases WHERE domain_id IN"
            " (SELECT id FROM domains WHERE name = ?) ORDER BY source_key, target",
            (domain.lower(),),
        )
    return [Alias(r[0], r[1]) for r in rows]


def alias_targets(source: str) -> Script[list[str]]:
    rows = yield Query(
        "SELECT target FROM aliases WHERE source_key = ? ORDER BY target", (address_key(source),)
    )
    return [r[0] for r in rows]


def lookup_address(address: str) -> Script[AddressLookup]:
    domain = yield from get_domain(domain_of(address))
    if domain is None:
        return AddressLookup(None)
    user = yield from get_user(address)
    if user is not None:
        return AddressLookup(domain, user)
    targets = yield from alias_targets(address)
    return AddressLookup(domain, None, tuple(targets))


def remove_alias(source: str, target: str | None) -> Script[Done[None]]:
    if target is None:
        rows = yield Query(
            "DELETE FROM aliases WHERE source_key = ? RETURNING id", (address_key(source),)
        )
    else:
        rows = yield Query(
            "DELETE FROM aliases WHERE source_key = ? AND target = ? RETURNING id",
            (address_key(source), target),
        )
    if not rows:
        raise NotFound(f"no alias {source}" + (f" -> {target}" if target else ""))
    return Done(None)
