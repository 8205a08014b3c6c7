"""`courriel domain policy DOMAIN`: shows the policy in force, changes one choice at a time."""

from __future__ import annotations

from pathlib import Path

from courriel.store.base import DomainPolicy, OnDmarcFailure


def lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


def test_the_defaults_come_from_the_config(courriel, data: Path) -> None:  # type: ignore[no-untyped-def]
    data.mkdir(parents=True)
    (data / "courriel.toml").write_text("[mailauth]\nreject_on_dmarc_reject = false\n")
    assert courriel("domain", "add", "example.org").status == 0
    shown = courriel("domain", "policy", "example.org")
    assert shown.status == 0
    assert shown.out.splitlines()[0] == "mail-authentication policy of example.org:"
    assert lines(shown.out) == [
        ["on-reject", "junk", "(server", "default)"],
        ["on-quarantine", "junk", "(server", "default)"],
        ["arc-override", "yes", "(server", "default)"],
        ["allow-from", "-", "(server", "default)"],
    ]


def test_each_choice_is_changed_alone_and_given_back(courriel, in_store) -> None:  # type: ignore[no-untyped-def]
    assert courriel("domain", "add", "example.org").status == 0
    done = courriel(
        "domain", "policy", "example.org", "--on-reject", "inbox", "--arc-override", "no"
    )
    assert done.status == 0
    assert lines(done.out) == [
        ["on-reject", "inbox", "(set", "for", "this", "domain)"],
        ["on-quarantine", "junk", "(server", "default)"],
        ["arc-override", "no", "(set", "for", "this", "domain)"],
        ["allow-from", "-", "(server", "default)"],
    ]
    assert in_store(lambda s: s.domain_policies()) == [
        DomainPolicy("example.org", OnDmarcFailure.INBOX, None, False)
    ]
    assert courriel("domain", "policy", "example.org", "--on-quarantine", "inbox").status == 0
    assert courriel("domain", "policy", "example.org", "--on-reject", "default").status == 0
    assert in_store(lambda s: s.domain_policies()) == [
        DomainPolicy("example.org", None, OnDmarcFailure.INBOX, False)
    ]
    allowed = courriel("domain", "policy", "example.org", "--allow-from", "Partner.example, b.test")
    assert allowed.status == 0
    assert ["allow-from", "partner.example,b.test", "(set", "for", "this", "domain)"] in lines(
        allowed.out
    )
    assert in_store(lambda s: s.domain_policies())[0].allow_from == ("partner.example", "b.test")
    assert courriel("domain", "policy", "example.org", "--allow-from", "").status == 0
    assert in_store(lambda s: s.domain_policies())[0].allow_from == ()


def test_unknown_domains_and_values_are_refused(courriel) -> None:  # type: ignore[no-untyped-def]
    assert courriel("domain", "add", "example.org").status == 0
    unknown = courriel("domain", "policy", "nowhere.example", "--on-reject", "junk")
    assert unknown.status == 1 and "unknown domain nowhere.example" in unknown.err
    assert courriel("domain", "policy", "example.org", "--on-quarantine", "reject").status == 2
