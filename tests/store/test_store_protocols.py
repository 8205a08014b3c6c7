"""``Store`` is the sum of its protocols by concern: each method belongs to exactly one of them."""

from __future__ import annotations

from typing import Protocol

from courriel.store import base
from courriel.store.sql import SqlStore


def own_members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def concerns() -> list[type]:
    return [
        cls
        for cls in base.Store.__mro__[1:]
        if cls not in (Protocol, object) and getattr(cls, "_is_protocol", False)
    ]


def test_every_method_has_one_concern() -> None:
    seen: dict[str, str] = {}
    twice = []
    for cls in concerns():
        for name in own_members(cls):
            if name in seen:
                twice.append(f"{name}: {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__
    assert not twice, twice
    # Store itself adds only what belongs to no concern: the queue's store and closing.
    assert own_members(base.Store) == {"queue", "close"}
    assert {"AccountStore", "MailStore", "SharingStore", "Coordination"} <= {
        cls.__name__ for cls in concerns()
    }


def test_the_concerns_split_as_documented() -> None:
    assert {"add_user", "set_password", "set_quota", "alias_targets"} <= own_members(
        base.AccountStore
    )
    assert {"events", "append", "expunge", "quota_usage", "get_metadata"} <= own_members(
        base.MailStore
    )
    assert {"get_acl", "private_seen", "urlauth_key", "shared_mailbox"} <= own_members(
        base.SharingStore
    )
    assert own_members(base.Coordination) == {
        "acquire_lease",
        "release_lease",
        "bump_counter",
        "read_counter",
        "remember",
        "remembered",
    }


def test_the_sql_store_implements_every_concern() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls in [base.Store, *concerns()]
        for name in own_members(cls)
        if not hasattr(SqlStore, name)
    ]
    assert not missing, missing
