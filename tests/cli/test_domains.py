"""`courriel domain add|list|remove|catchall`, checked against what the store holds."""

from __future__ import annotations

import pytest


def test_add_stores_the_lower_case_name_and_says_so(courriel, in_store) -> None:
    r = courriel("domain", "add", "Example.ORG")
    assert r.status == 0, r.err
    assert r.out == "added domain example.org\n"
    d = in_store(lambda s: s.get_domain("example.org"))
    assert d is not None
    assert d.name == "example.org"


def test_idn_is_stored_as_a_label_and_printed(courriel, in_store) -> None:
    r = courriel("domain", "add", "Bücher.example")
    assert r.status == 0, r.err
    assert "xn--bcher-kva.example" in r.out
    names = [d.name for d in in_store(lambda s: s.list_domains())]
    assert names == ["xn--bcher-kva.example"]
    listed = courriel("domain", "list")
    assert listed.out == "xn--bcher-kva.example (bücher.example)\n"


def test_list_is_sorted_and_shows_the_catch_all(courriel) -> None:
    for name in ("zeta.example", "alpha.example"):
        assert courriel("domain", "add", name).status == 0
    courriel("user", "add", "postmaster@alpha.example", "--password-argv", "pw-123456")
    assert courriel("domain", "catchall", "alpha.example", "postmaster@alpha.example").status == 0
    r = courriel("domain", "list")
    assert r.out.splitlines() == [
        "alpha.example  catch-all -> postmaster@alpha.example",
        "zeta.example",
    ]


def test_duplicate_domain_is_refused(courriel, in_store) -> None:
    assert courriel("domain", "add", "example.org").status == 0
    r = courriel("domain", "add", "EXAMPLE.org.")
    assert r.status == 1
    assert r.error() == "domain example.org already exists"
    assert len(in_store(lambda s: s.list_domains())) == 1


@pytest.mark.parametrize("bad", ["exa mple.org", "a..b", "x-.example", "[192.0.2.1]", ""])
def test_malformed_domain_is_a_usage_error(courriel, in_store, bad: str) -> None:
    r = courriel("domain", "add", bad)
    assert r.status == 2
    assert r.error().startswith(f"invalid domain {bad!r}")
    assert in_store(lambda s: s.list_domains()) == []


def test_remove_an_empty_domain(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    r = courriel("domain", "remove", "example.org")
    assert r.status == 0, r.err
    assert r.out == "removed domain example.org\n"
    assert in_store(lambda s: s.get_domain("example.org")) is None


def test_removing_a_domain_with_users_is_refused(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    courriel("user", "add", "bob@example.org", "--password-argv", "pw-123456")
    courriel("alias", "add", "info@example.org", "alice@example.org")
    r = courriel("domain", "remove", "example.org")
    assert r.status == 1
    message = r.error()
    assert "example.org still has 2 users and 1 alias" in message
    assert in_store(lambda s: s.get_domain("example.org")) is not None
    assert len(in_store(lambda s: s.list_users("example.org"))) == 2


def test_removing_an_unknown_domain_fails(courriel) -> None:
    r = courriel("domain", "remove", "nowhere.example")
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"


def test_catch_all_on_and_off(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    r = courriel("domain", "catchall", "example.org", "Alice@Example.org")
    assert r.status == 0, r.err
    assert r.out == "catch-all of example.org -> alice@example.org\n"
    d = in_store(lambda s: s.get_domain("example.org"))
    assert d is not None
    assert d.catch_all == "alice@example.org"
    r = courriel("domain", "catchall", "example.org", "--off")
    assert r.status == 0, r.err
    assert r.out == "catch-all of example.org turned off\n"
    d = in_store(lambda s: s.get_domain("example.org"))
    assert d is not None
    assert d.catch_all is None


def test_catch_all_may_point_to_a_remote_address(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    assert courriel("domain", "catchall", "example.org", "ops@elsewhere.example").status == 0
    d = in_store(lambda s: s.get_domain("example.org"))
    assert d is not None
    assert d.catch_all == "ops@elsewhere.example"


def test_catch_all_to_nobody_in_a_local_domain_is_refused(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    r = courriel("domain", "catchall", "example.org", "typo@example.org")
    assert r.status == 1
    assert "typo@example.org" in r.error()
    d = in_store(lambda s: s.get_domain("example.org"))
    assert d is not None
    assert d.catch_all is None


@pytest.mark.parametrize(
    "argv",
    [
        ("domain", "catchall", "example.org"),
        ("domain", "catchall", "example.org", "a@example.org", "--off"),
    ],
)
def test_catch_all_needs_exactly_one_of_address_or_off(courriel, argv: tuple[str, ...]) -> None:
    courriel("domain", "add", "example.org")
    r = courriel(*argv)
    assert r.status == 2
    assert "either an ADDRESS or --off" in r.error()


def test_catch_all_of_an_unknown_domain_fails(courriel) -> None:
    r = courriel("domain", "catchall", "nowhere.example", "--off")
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"
