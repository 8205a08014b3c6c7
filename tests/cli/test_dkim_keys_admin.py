"""DKIM key administration: keys for domains made before keys existed, and the signing set."""

from __future__ import annotations

from datetime import UTC, datetime

from courriel import admin_dkim
from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import Algorithm, generate_key
from courriel.queue.signer import DkimSigner, signing_keys
from courriel.store.base import DkimKey, DkimKeyState, Store
from courriel.testing.dns import silent_port

WHEN = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


async def test_ensure_keys_gives_keys_to_domains_without_them(store: Store) -> None:
    await store.add_domain("old.example")  # as a store from before the upgrade holds it
    await store.add_domain("new.example")
    await admin_dkim.create_keys(store, "new.example", WHEN)
    assert await admin_dkim.ensure_keys(store, WHEN) == ["old.example"]
    assert await admin_dkim.ensure_keys(store, WHEN) == []  # a second start does nothing
    selectors = sorted(k.selector for k in await store.dkim_keys("old.example"))
    assert selectors == ["c202612e", "c202612r"]


async def test_signing_keys_are_the_active_ones_ed25519_first(store: Store) -> None:
    await store.add_domain("example.org")
    await admin_dkim.create_keys(store, "example.org", WHEN)
    await admin_dkim.rotate(store, "example.org", now=WHEN)
    assert [k.selector for k in signing_keys(await store.dkim_keys("example.org"))] == [
        "c202612e",
        "c202612r",
    ]  # pending keys do not sign
    assert await admin_dkim.activate_pending(store, "example.org", now=WHEN) == [
        "c202612e2",
        "c202612r2",
    ]
    keys = signing_keys(await store.dkim_keys("example.org"))
    assert [(k.selector, k.algorithm) for k in keys] == [
        ("c202612e2", Algorithm.ED25519),
        ("c202612r2", Algorithm.RSA),
    ]
    assert len(admin_dkim.published(await store.dkim_keys("example.org"))) == 4


def test_selector_names() -> None:
    assert admin_dkim.selector_for(Algorithm.RSA, WHEN, []) == "c202612r"
    assert admin_dkim.selector_for(Algorithm.RSA, WHEN, ["c202612r", "c202612r2"]) == "c202612r3"


async def test_signer_signs_for_hosted_domains_only(store: Store) -> None:
    await store.add_domain("example.org")
    await admin_dkim.create_keys(store, "example.org", WHEN)
    signer = DkimSigner(store)
    msg = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    fields = await signer.sign(msg)
    assert fields.count(b"DKIM-Signature:") == 2
    assert b"s=c202612e;" in fields and b"s=c202612r;" in fields
    assert await signer.sign(msg.replace(b"example.org", b"elsewhere.example")) == b""
    two_froms = b"From: a@example.org, b@example.org\r\n\r\nbody\r\n"
    assert await signer.sign(two_froms) == b""
    # Keys are read once per period, not once per message.
    await admin_dkim.rotate(store, "example.org", now=WHEN)
    await admin_dkim.activate_pending(store, "example.org", now=WHEN)
    assert b"s=c202612e;" in await signer.sign(msg)
    assert b"s=c202612e2;" in await DkimSigner(store).sign(msg)


async def test_no_dns_answer_activates_nothing(store: Store) -> None:
    await store.add_domain("example.org")
    await admin_dkim.create_keys(store, "example.org", WHEN)
    pending = await admin_dkim.rotate(store, "example.org", now=WHEN)
    with silent_port() as port:
        resolver = AuthResolver([f"127.0.0.1:{port}"], timeout=0.3)
        result = await admin_dkim.activate_published(store, resolver, now=WHEN)
    assert (result.activated, result.unpublished) == ([], [])
    assert [k.selector for k in result.unknown] == [k.selector for k in pending]
    states = {k.selector: k.state for k in await store.dkim_keys("example.org")}
    assert states["c202612e2"] is DkimKeyState.PENDING


def test_a_record_is_published_when_it_carries_the_key() -> None:
    key = DkimKey("example.org", "s", "ed25519", generate_key(Algorithm.ED25519).decode(), WHEN)
    record = admin_dkim.record_of(key)[1]
    assert admin_dkim.record_published(key, [b"v=spf1 -all", record.encode()])
    spaced = record.replace("p=", "p= ").encode()  # white space inside p= does not matter
    assert admin_dkim.record_published(key, [spaced])
    assert not admin_dkim.record_published(key, [record.replace("ed25519", "rsa").encode()])
    assert not admin_dkim.record_published(key, [b"v=DKIM1; k=ed25519; p="])
