"""`courriel alias add|list|remove`, checked against what the store holds."""

from __future__ import annotations

import pytest


@pytest.fixture
def alice(courriel) -> str:
    assert courriel("domain", "add", "example.org").status == 0
    r = courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    assert r.status == 0, r.err
    return "alice@example.org"


def test_add_list_remove(courriel, in_store, alice: str) -> None:
    r = courriel("alias", "add", "info@example.org", alice)
    assert r.status == 0, r.err
    assert r.out == "added alias info@example.org -> alice@example.org\n"
    assert courriel("alias", "add", "info@example.org", "ops@remote.example").status == 0
    stored = {(a.source, a.target) for a in in_store(lambda s: s.list_aliases("example.org"))}
    assert stored == {
        ("info@example.org", "alice@example.org"),
        ("info@example.org", "ops@remote.example"),
    }
    listed = courriel("alias", "list")
    assert listed.out.splitlines() == [
        "info@example.org -> alice@example.org",
        "info@example.org -> ops@remote.example",
    ]
    assert courriel("alias", "remove", "info@example.org", "ops@remote.example").status == 0
    stored = {(a.source, a.target) for a in in_store(lambda s: s.list_aliases())}
    assert stored == {("info@example.org", "alice@example.org")}
    assert courriel("alias", "remove", "INFO@example.org").status == 0
    assert in_store(lambda s: s.list_aliases()) == []


def test_alias_to_nobody_in_a_local_domain_is_refused(courriel, in_store, alice: str) -> None:
    r = courriel("alias", "add", "info@example.org", "alcie@example.org")
    assert r.status == 1
    assert "alcie@example.org is in a local domain but is neither a user nor an alias" in r.error()
    assert in_store(lambda s: s.list_aliases()) == []


def test_alias_source_must_be_in_a_local_domain(courriel, in_store, alice: str) -> None:
    r = courriel("alias", "add", "info@nowhere.example", alice)
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"
    assert in_store(lambda s: s.list_aliases()) == []


def test_alias_cannot_hide_a_user(courriel, in_store, alice: str) -> None:
    r = courriel("alias", "add", "Alice@example.org", "ops@remote.example")
    assert r.status == 1
    assert "is a user" in r.error()
    assert in_store(lambda s: s.list_aliases()) == []


def test_duplicate_alias_is_refused(courriel, in_store, alice: str) -> None:
    assert courriel("alias", "add", "info@example.org", alice).status == 0
    r = courriel("alias", "add", "info@example.org", "ALICE@example.org")
    assert r.status == 1
    assert "already exists" in r.error()
    assert len(in_store(lambda s: s.list_aliases())) == 1


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("info", "alice@example.org"),
        ("info@example.org", "not an address"),
        ("alice@example.org", "Alice@example.org"),
    ],
)
def test_malformed_alias_is_a_usage_error(courriel, alice: str, source: str, target: str) -> None:
    r = courriel("alias", "add", source, target)
    assert r.status == 2
    assert r.error()


def test_removing_an_unknown_alias_fails(courriel, alice: str) -> None:
    r = courriel("alias", "remove", "info@example.org")
    assert r.status == 1
    assert r.error() == "unknown alias info@example.org"


def test_list_by_domain(courriel, alice: str) -> None:
    courriel("domain", "add", "other.example")
    courriel("alias", "add", "info@example.org", alice)
    courriel("alias", "add", "sales@other.example", alice)
    r = courriel("alias", "list", "other.example")
    assert r.out == "sales@other.example -> alice@example.org\n"
