"""ACME state in the store: the account with its failure record, challenges, the certificate."""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.store.acme import AcmeAccount, AcmeChallenge, StoredCertificate
from courriel.store.base import Store

DIRECTORY = "https://acme.example.test/dir"
T0 = 1_800_000_000.0


async def test_the_account_is_kept_per_directory_and_replaced_whole(store: Store) -> None:
    assert await store.acme_account(DIRECTORY) is None
    first = AcmeAccount(DIRECTORY, "KEY PEM")
    await store.save_acme_account(first)
    assert await store.acme_account(DIRECTORY) == first
    failed = AcmeAccount(DIRECTORY, "KEY PEM", "https://acme/acct/1", 2, T0 + 1200.5, "no DNS")
    await store.save_acme_account(failed)
    assert await store.acme_account(DIRECTORY) == failed
    assert await store.acme_account("https://other.example.test/dir") is None


async def test_challenges_are_listed_until_they_expire_or_are_removed(store: Store) -> None:
    a = AcmeChallenge("tok-a", "mail.example.test", "http-01", "tok-a.thumb", T0 + 600)
    b = AcmeChallenge("tok-b", "mta-sts.example.test", "tls-alpn-01", "tok-b.thumb", T0 + 60)
    await store.add_acme_challenges([a, b])
    assert await store.acme_challenges(T0) == [a, b]
    assert await store.acme_challenges(T0 + 60) == [a]  # b expired
    again = AcmeChallenge("tok-a", "mail.example.test", "http-01", "tok-a.other", T0 + 900)
    await store.add_acme_challenges([again])  # same token: replaced
    assert await store.acme_challenges(T0) == [again, b]
    await store.remove_acme_challenges(["tok-a"], T0 + 61)  # and the sweep takes b
    assert await store.acme_challenges(T0) == []


async def test_the_certificate_is_stored_and_replaced(store: Store) -> None:
    assert await store.certificate("acme") is None
    until = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    cert = StoredCertificate("acme", "CHAIN", "KEY", "1a2b", until, ("a.test", "b.test"))
    await store.save_certificate(cert)
    assert await store.certificate("acme") == cert
    renewed = StoredCertificate("acme", "CHAIN2", "KEY2", "3c4d", until, ("a.test",))
    await store.save_certificate(renewed)
    assert await store.certificate("acme") == renewed
