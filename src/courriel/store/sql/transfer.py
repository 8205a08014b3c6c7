"""Scripts that read and write whole tables, to move an installation between backends.

Theory of operation
-------------------
``TABLES`` lists, in an order that satisfies every foreign key, each table that holds state
worth moving and its columns (leases and rate counters are transient and stay behind: a queue
entry arrives without its lease, due for the first worker that looks). ``page``
reads a table in key order, ``limit`` rows after a given key, so an export streams in bounded
memory; ``load`` inserts rows exactly as read (ids, UIDs, MODSEQs and counters included), and
``is_empty`` refuses to load into a store that already holds accounts.

Rows are plain tuples in the column order of ``TABLES``, the same for SQLite and PostgreSQL
(``courriel.store.sql``: integers, text, bytes, NULL), so a page read from one backend loads
into the other unchanged. The caller copies the bodies through the ``BlobStore`` first: a
``blobs`` row must never exist without its body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from courriel.store.sql.core import Done, Query, Row, Rows, Script, insert_rows


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    cols: tuple[str, ...]
    key: tuple[str, ...]  # primary key columns: the page order
    large: bool = False  # rows carry whole messages: read them in short pages


TABLES: tuple[Table, ...] = (
    Table("counters", ("name", "value"), ("name",)),
    Table("domains", ("id", "name", "catch_all"), ("id",)),
    Table(
        "users",
        (
            "id",
            "domain_id",
            "address",
            "address_key",
            "password_hash",
            "quota_bytes",
            "used_bytes",
            "used_messages",
            "created",
            "is_admin",
            "quota_messages",
            "quota_mailboxes",
        ),
        ("id",),
    ),
    Table("aliases", ("id", "domain_id", "source", "source_key", "target"), ("id",)),
    Table(
        "mailboxes",
        ("id", "user_id", "name", "uidvalidity", "uidnext", "highestmodseq", "special_use"),
        ("id",),
    ),
    Table("subscriptions", ("user_id", "name"), ("user_id", "name")),
    Table("blobs", ("id", "refcount", "size"), ("id",)),
    Table(
        "messages",
        (
            "mailbox_id",
            "uid",
            "modseq",
            "sysflags",
            "keywords",
            "internal_date",
            "size",
            "blob_id",
            "meta",
        ),
        ("mailbox_id", "uid"),
    ),
    Table("expunged", ("mailbox_id", "uid", "modseq"), ("mailbox_id", "uid")),
    Table("acl", ("mailbox_id", "grantee_id", "rights"), ("mailbox_id", "grantee_id")),
    Table("urlauth_keys", ("mailbox_id", "key"), ("mailbox_id",)),
    Table("private_seen", ("mailbox_id", "user_id", "uid"), ("mailbox_id", "user_id", "uid")),
    Table(
        "metadata",
        ("mailbox_id", "owner_id", "entry", "value"),
        ("mailbox_id", "owner_id", "entry"),
    ),
    Table(
        "dkim_keys",
        ("domain_id", "selector", "algorithm", "private_key", "created", "state", "retire_after"),
        ("domain_id", "selector"),
    ),
    # Sieve scripts and delivery options (migration 0013)
    Table("sieve_scripts", ("user_id", "name", "content", "active"), ("user_id", "name")),
    Table("sieve_global_scripts", ("name", "content"), ("name",)),
    Table("delivery_options", ("user_id", "tag_folders"), ("user_id",)),
    # The outbound queue: mail accepted with 250 and not yet relayed must move with the rest.
    Table(
        "queue_messages",
        (
            "id",
            "sender",
            "ret",
            "envid",
            "smtputf8",
            "body_type",
            "authenticated",
            "created",
            "size",
            "message",
            "held",
            "warned",
            "next_attempt",
        ),
        ("id",),
        large=True,
    ),
    Table(
        "queue_recipients",
        (
            "message_id",
            "idx",
            "address",
            "domain",
            "notify",
            "orcpt",
            "state",
            "attempts",
            "next_attempt",
            "last_attempt",
            "code",
            "enhanced",
            "reason",
            "remote_host",
            "report",
        ),
        ("message_id", "idx"),
    ),
    # The web admin's lasting state (sessions and mail events are transient and stay behind).
    Table("app_passwords", ("id", "user_id", "name", "digest", "created"), ("id",)),
    Table("api_tokens", ("name", "digest", "created"), ("name",)),
    Table("audit_log", ("id", "at", "actor", "action", "detail"), ("id",)),
)
BY_NAME = {t.name: t for t in TABLES}
# Tables whose ids come from a sequence (PostgreSQL identity, SQLite AUTOINCREMENT).
IDENTITY_TABLES = ("domains", "users", "aliases", "mailboxes", "app_passwords", "audit_log")


def _after(key: Sequence[str]) -> str:
    """Row-value comparison spelled out: ``(a, b) > (?, ?)`` as ``a > ? OR (a = ? AND b > ?)``."""
    if len(key) == 1:
        return f"{key[0]} > ?"
    head, rest = key[0], key[1:]
    return f"({head} > ? OR ({head} = ? AND ({_after(rest)})))"


def _after_params(last: Row) -> tuple[object, ...]:
    if len(last) == 1:
        return (last[0],)
    return (last[0], last[0], *_after_params(last[1:]))


def page(table: Table, last: Row | None, limit: int) -> Script[Rows]:
    """Up to ``limit`` rows of ``table`` whose key is after ``last`` (None: from the start)."""
    cols = ", ".join(table.cols)
    order = ", ".join(table.key)
    if last is None:
        rows = yield Query(
            f"SELECT {cols} FROM {table.name} ORDER BY {order} LIMIT ?",  # noqa: S608 - constants
            (limit,),
        )
    else:
        rows = yield Query(
            f"SELECT {cols} FROM {table.name} WHERE {_after(table.key)}"  # noqa: S608
            f" ORDER BY {order} LIMIT ?",
            (*_after_params(last), limit),
        )
    return rows


def key_of(table: Table, row: Row) -> Row:
    return tuple(row[table.cols.index(c)] for c in table.key)


def is_empty() -> Script[bool]:
    """True when the store holds no domain, user, message or queue entry: safe to load into."""
    rows = yield Query(
        "SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM users)"
        " + (SELECT count(*) FROM messages) + (SELECT count(*) FROM queue_messages)"
    )
    return int(rows[0][0]) == 0


def load(table: Table, rows: Sequence[Row]) -> Script[Done[int]]:
    """Inserts rows as exported; counters replace the fresh store's own values."""
    if table.name == "counters":
        for name, value in rows:
            yield Query(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
                False,
            )
        return Done(len(rows))
    yield from insert_rows(table.name, table.cols, rows)
    return Done(len(rows))


def count(table: Table) -> Script[int]:
    rows = yield Query(f"SELECT count(*) FROM {table.name}")  # noqa: S608 - constant names
    return int(rows[0][0])
