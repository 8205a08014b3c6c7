"""Recipient resolution against a real store: users, aliases, plus-addressing, catch-all, loops."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from courriel.accounts.resolve import MAX_ALIAS_DEPTH, Outcome, Resolution, resolve_recipient
from courriel.mail.address import AddressError, parse_address
from courriel.store.base import Store
from courriel.testing.counting import CountingStore

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


async def users(store: Store, *addresses: str) -> dict[str, int]:
    """Creates the domains and users named; returns address -> user id."""
    ids = {}
    for address in addresses:
        domain = address.rpartition("@")[2]
        if await store.get_domain(domain) is None:
            await store.add_domain(domain)
        ids[address] = (await store.add_user(address, HASH)).id
    return ids


async def aliases(store: Store, *pairs: tuple[str, str]) -> None:
    for source, target in pairs:
        domain = source.rpartition("@")[2]
        if await store.get_domain(domain) is None:
            await store.add_domain(domain)
        await store.add_alias(source, target)


async def test_domain_not_hosted(store: Store) -> None:
    await users(store, "alice@example.org")
    result = await resolve_recipient(store, "alice@example.net")
    assert result.outcome is Outcome.NOT_LOCAL
    assert not result.accepted
    assert "example.net" in result.reason


async def test_exact_user(store: Store) -> None:
    ids = await users(store, "alice@example.org", "bob@example.org")
    result = await resolve_recipient(store, "alice@example.org")
    assert result == Resolution(Outcome.DELIVER, user_ids=(ids["alice@example.org"],))
    assert result.accepted


@pytest.mark.parametrize(
    "given", ["ALICE@EXAMPLE.ORG", '"alice"@example.org', "alice@example.org."]
)
async def test_user_matches_case_insensitively(store: Store, given: str) -> None:
    ids = await users(store, "alice@example.org")
    result = await resolve_recipient(store, given)
    assert result.user_ids == (ids["alice@example.org"],)


async def test_internationalised_domain(store: Store) -> None:
    ids = await users(store, "joe@xn--bcher-kva.example")
    result = await resolve_recipient(store, "joe@Bücher.Example")
    assert result.user_ids == (ids["joe@xn--bcher-kva.example"],)


async def test_parsed_address_is_accepted_too(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    result = await resolve_recipient(store, parse_address("alice@example.org"))
    assert result.user_ids == (ids["alice@example.org"],)


async def test_not_an_address(store: Store) -> None:
    with pytest.raises(AddressError):
        await resolve_recipient(store, "alice")


async def test_unknown_user(store: Store) -> None:
    await users(store, "alice@example.org")
    result = await resolve_recipient(store, "carol@example.org")
    assert result.outcome is Outcome.UNKNOWN_USER
    assert result.user_ids == ()
    assert result.remote == ()


async def test_alias_to_local_and_remote(store: Store) -> None:
    ids = await users(store, "alice@example.org", "bob@example.org")
    await aliases(
        store,
        ("team@example.org", "alice@example.org"),
        ("team@example.org", "Bob@Example.org"),
        ("team@example.org", "Partner@Elsewhere.example"),
    )
    result = await resolve_recipient(store, "team@example.org")
    assert result.outcome is Outcome.DELIVER
    assert sorted(result.user_ids) == sorted(ids.values())
    # The remote local part keeps its case (RFC 5321 §2.4), the domain is normalised.
    assert result.remote == ("Partner@elsewhere.example",)
    assert result.dangling == ()


async def test_alias_chain_and_duplicates(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(
        store,
        ("all@example.org", "sales@example.org"),
        ("all@example.org", "support@example.org"),
        ("all@example.org", "alice@example.org"),
        ("sales@example.org", "alice@example.org"),
        ("support@example.org", "sales@example.org"),
        ("support@example.org", "ext@remote.example"),
        ("sales@example.org", "ext@remote.example"),
    )
    result = await resolve_recipient(store, "all@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert result.remote == ("ext@remote.example",)


async def test_alias_into_another_hosted_domain(store: Store) -> None:
    ids = await users(store, "alice@example.org", "bob@example.com")
    await aliases(store, ("boss@example.org", "bob@example.com"))
    result = await resolve_recipient(store, "boss@example.org")
    assert result.user_ids == (ids["bob@example.com"],)


async def test_pure_alias_loop(store: Store) -> None:
    await users(store, "alice@example.org")
    await aliases(store, ("a@example.org", "b@example.org"), ("b@example.org", "a@example.org"))
    result = await resolve_recipient(store, "a@example.org")
    assert result.outcome is Outcome.ALIAS_LOOP
    assert "a@example.org" in result.reason


async def test_self_alias_is_a_loop(store: Store) -> None:
    await users(store, "alice@example.org")
    await aliases(store, ("me@example.org", "ME@example.org"))
    result = await resolve_recipient(store, "me@example.org")
    assert result.outcome is Outcome.ALIAS_LOOP


async def test_loop_with_a_way_out_delivers(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(
        store,
        ("a@example.org", "b@example.org"),
        ("b@example.org", "a@example.org"),
        ("b@example.org", "alice@example.org"),
    )
    result = await resolve_recipient(store, "a@example.org")
    assert result == Resolution(Outcome.DELIVER, user_ids=(ids["alice@example.org"],))


async def chain(store: Store, length: int) -> None:
    """a0 -> a1 -> ... -> a<length-1> -> alice: ``length`` alias hops."""
    await users(store, "alice@example.org")
    hops = [f"a{i}@example.org" for i in range(length)] + ["alice@example.org"]
    await aliases(store, *itertools.pairwise(hops))


async def test_chain_at_the_depth_limit_delivers(store: Store) -> None:
    await chain(store, MAX_ALIAS_DEPTH)
    result = await resolve_recipient(store, "a0@example.org")
    assert result.outcome is Outcome.DELIVER
    assert len(result.user_ids) == 1


async def test_chain_past_the_depth_limit_is_refused(store: Store) -> None:
    await chain(store, MAX_ALIAS_DEPTH + 1)
    result = await resolve_recipient(store, "a0@example.org")
    assert result.outcome is Outcome.ALIAS_LOOP
    assert str(MAX_ALIAS_DEPTH) in result.reason


async def test_alias_to_nobody_is_unknown_and_skips_catch_all(store: Store) -> None:
    ids = await users(store, "alice@example.org", "postmaster@example.org")
    await store.set_catch_all("example.org", "postmaster@example.org")
    await aliases(store, ("old@example.org", "gone@example.net"))
    await store.add_domain("example.net")
    result = await resolve_recipient(store, "old@example.org")
    assert result.outcome is Outcome.UNKNOWN_USER
    assert result.dangling == ("gone@example.net",)
    assert ids["postmaster@example.org"] not in result.user_ids


async def test_dangling_targets_do_not_stop_the_others(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(
        store,
        ("team@example.org", "alice@example.org"),
        ("team@example.org", "left@example.org"),
        ("team@example.org", "not an address"),
    )
    result = await resolve_recipient(store, "team@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert set(result.dangling) == {"left@example.org", "not an address"}


@pytest.mark.parametrize(
    ("given", "tag"), [("alice+lists@example.org", "lists"), ("alice+@example.org", "")]
)
async def test_plus_address_of_a_user(store: Store, given: str, tag: str) -> None:
    ids = await users(store, "alice@example.org")
    result = await resolve_recipient(store, given)
    assert result == Resolution(Outcome.DELIVER, user_ids=(ids["alice@example.org"],), tag=tag)


async def test_plus_address_of_an_alias(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(store, ("team@example.org", "alice@example.org"))
    result = await resolve_recipient(store, "team+urgent@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert result.tag == "urgent"


async def test_plus_in_a_real_name_is_no_tag(store: Store) -> None:
    ids = await users(store, "c++@example.org", "c@example.org")
    result = await resolve_recipient(store, "c++@example.org")
    assert result == Resolution(Outcome.DELIVER, user_ids=(ids["c++@example.org"],))


async def test_plus_address_inside_an_alias(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(store, ("shop@example.org", "alice+shopping@example.org"))
    result = await resolve_recipient(store, "shop@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert result.tag is None  # the tag belongs to the target, not to the address given


async def test_plus_address_of_nobody(store: Store) -> None:
    await users(store, "alice@example.org")
    result = await resolve_recipient(store, "carol+x@example.org")
    assert result.outcome is Outcome.UNKNOWN_USER


@pytest.mark.parametrize("given", ["anything@example.org", "alice2+x@example.org"])
async def test_catch_all_to_a_user(store: Store, given: str) -> None:
    ids = await users(store, "alice@example.org", "postmaster@example.org")
    await store.set_catch_all("example.org", "postmaster@example.org")
    result = await resolve_recipient(store, given)
    assert result == Resolution(Outcome.DELIVER, user_ids=(ids["postmaster@example.org"],))


async def test_catch_all_comes_after_users_and_aliases(store: Store) -> None:
    ids = await users(store, "alice@example.org", "postmaster@example.org")
    await store.set_catch_all("example.org", "postmaster@example.org")
    await aliases(store, ("info@example.org", "alice@example.org"))
    for given in ("alice@example.org", "info@example.org", "alice+x@example.org"):
        result = await resolve_recipient(store, given)
        assert result.user_ids == (ids["alice@example.org"],), given


async def test_catch_all_to_an_alias_and_to_remote(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(
        store,
        ("everyone@example.org", "alice@example.org"),
        ("everyone@example.org", "archive@backup.example"),
    )
    await store.set_catch_all("example.org", "everyone@example.org")
    result = await resolve_recipient(store, "whoever@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert result.remote == ("archive@backup.example",)


async def test_catch_all_to_a_missing_address_in_its_own_domain(store: Store) -> None:
    await users(store, "alice@example.org")
    await store.set_catch_all("example.org", "nobody@example.org")
    result = await resolve_recipient(store, "whoever@example.org")
    assert not result.accepted
    assert result.user_ids == ()


async def test_catch_all_of_another_domain_applies_to_alias_targets(store: Store) -> None:
    ids = await users(store, "alice@example.org", "admin@example.com")
    await store.set_catch_all("example.com", "admin@example.com")
    await aliases(store, ("x@example.org", "unknown@example.com"))
    result = await resolve_recipient(store, "x@example.org")
    assert result.user_ids == (ids["admin@example.com"],)


async def test_a_user_or_an_alias_costs_one_read_and_each_target_its_own(store: Store) -> None:
    ids = await users(store, "alice@example.org")
    await aliases(store, ("team@example.org", "alice@example.org"))
    counting: Any = CountingStore(store)
    result = await resolve_recipient(counting, "alice@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert counting.calls == ["lookup_address"]
    counting.calls.clear()
    result = await resolve_recipient(counting, "team@example.org")
    assert result.user_ids == (ids["alice@example.org"],)
    assert counting.calls == ["lookup_address", "get_domain", "get_user"]
