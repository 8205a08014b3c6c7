"""Each domain's mail-authentication policy in the store: set, read per domain, partly unset,
removed with its domain; DMARC evaluations kept until reported; on every backend."""

from __future__ import annotations

import pytest

from courriel.store.base import DomainPolicy, NotFound, OnDmarcFailure, Store


async def test_policies_are_set_read_and_cleared(store: Store) -> None:
    for name in ("example.org", "example.net", "example.com"):
        await store.add_domain(name)
    assert await store.domain_policies() == []
    org = DomainPolicy("example.org", OnDmarcFailure.JUNK, OnDmarcFailure.INBOX, False)
    net = DomainPolicy("example.net", arc_override=True, allow_from=("partner.example", "b.test"))
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


async def test_dmarc_evaluations_wait_for_their_report(store: Store) -> None:
    await store.add_dmarc_evaluation("Example.org", 100, '{"n": 1}')
    await store.add_dmarc_evaluation("example.org", 200, '{"n": 2}')
    await store.add_dmarc_evaluation("example.net", 150, '{"n": 3}')
    await store.add_dmarc_evaluation("example.org", 300, '{"n": 4}')
    assert await store.dmarc_report_domains(before=200) == ["example.net", "example.org"]
    assert await store.dmarc_report_domains(before=100) == []
    rows = await store.dmarc_evaluations("example.org", before=300, limit=10)
    assert [(r.policy_domain, r.received, r.data) for r in rows] == [
        ("example.org", 100, '{"n": 1}'),
        ("example.org", 200, '{"n": 2}'),
    ]
    assert len(await store.dmarc_evaluations("example.org", before=300, limit=1)) == 1
    # What was reported goes; what came meanwhile (or later) stays for the next report.
    assert await store.delete_dmarc_evaluations("example.org", rows[-1].id) == 2
    left = await store.dmarc_evaluations("example.org", before=1000, limit=10)
    assert [r.data for r in left] == ['{"n": 4}']
    assert await store.dmarc_report_domains(before=1000) == ["example.net", "example.org"]
