"""Each domain's mail-authentication policy in the store: set, read per domain, partly unset,
removed with its domain; on every backend."""

from __future__ import annotations

import pytest

from courriel.store.base import DomainPolicy, NotFound, OnDmarcFailure, Store


async def test_policies_are_set_read_and_cleared(store: Store) -> None:
    for name in ("example.org", "example.net", "example.com"):
        await store.add_domain(name)
    assert await store.domain_policies() == []
    org = DomainPolicy("example.org", OnDmarcFailure.JUNK, OnDmarcFailure.INBOX, False)
    net = DomainPolicy("example.net", arc_override=True)
    await store.set_domain_policy(org)
    await store.set_domain_policy(net)
    assert await store.domain_policies() == [net, org]
    assert await store.domain_policies(["EXAMPLE.org", "example.com"]) == [org]
    assert await store.domain_policies([]) == []
    changed = DomainPolicy("example.org", on_reject=OnDmarcFailure.REJECT)
    await store.set_domain_policy(changed)  # replaces the whole row: the others go back to None
    assert await store.domain_policies(["example.org"]) == [changed]
    await store.set_domain_policy(DomainPolicy("example.org"))  # nothing set: no row
    assert await store.domain_policies() == [net]
    with pytest.raises(NotFound):
        await store.set_domain_policy(DomainPolicy("nowhere.example", arc_override=False))


async def test_a_policy_goes_with_its_domain(store: Store) -> None:
    await store.add_domain("example.org")
    await store.set_domain_policy(DomainPolicy("example.org", OnDmarcFailure.INBOX))
    await store.remove_domain("example.org")
    await store.add_domain("example.org")
    assert await store.domain_policies() == []
