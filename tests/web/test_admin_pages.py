"""Every admin page renders, each form does what the command line does, and is audited."""

from __future__ import annotations

import re
import time

from aiohttp.test_utils import TestClient, TestServer

from courriel import admin
from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.store.access import NewMailEvent
from courriel.store.base import Store
from courriel.store.queue import NewEntry, NewRecipient
from courriel.testing import dnsmasq
from courriel.testing.webadmin import (
    ADMIN,
    HOSTNAME,
    PASSWORD,
    USER,
    Browser,
    admin_app,
    admin_config,
)


async def _admin(browser):  # type: ignore[no-untyped-def]
    b = await browser()
    await b.sign_in(ADMIN, PASSWORD)
    return b


async def test_every_admin_page_renders(browser, admin_store: Store) -> None:
    await admin_store.add_mail_events(
        [NewMailEvent(int(time.time()), "refused", "x@spam.example", USER, "550 no")]
    )
    b = await _admin(browser)
    pages = {
        "/admin/domains": ["example.org"],
        "/admin/domains/example.org": ["_dmarc.example.org", "UNKNOWN", "mode: testing"],
        "/admin/users": [ADMIN, USER, "administrator"],
        f"/admin/users/{USER}": ["Set password", "App passwords"],
        "/admin/aliases": ["Catch-all"],
        "/admin/queue": ["The queue is empty."],
        "/admin/events": ["x@spam.example", "550 no"],
        "/admin/status": ["courriel 0.1.0", "self-signed", "days left", "https"],
        "/admin/audit": ["Audit log"],
        "/admin/tokens": ["API tokens"],
        "/me": ["imaps" if False else "IMAP (incoming)", "/profile/apple.mobileconfig"],
    }
    for path, expected in pages.items():
        page = await b.get(path)
        assert page.status == 200, path
        for text in expected:
            assert text in page.text, (path, text)
    assert (await b.get("/static/courriel.css")).status == 200
    assert (await b.get("/admin/users/nobody@example.org")).status == 404
    assert (await b.get("/admin/domains/nowhere.example")).status == 404


async def test_users_and_aliases_through_the_forms(
    browser, admin_store: Store, hasher: PasswordHasher
) -> None:
    b = await _admin(browser)
    await b.get("/admin/users")
    r = await b.post(
        "/admin/users/add", {"address": "bob@example.org", "password": "pw1", "quota": "1G"}
    )
    assert r.location == "/admin/users"
    assert "Added user bob@example.org." in (await b.get("/admin/users")).text
    bob = await admin_store.get_user("bob@example.org")
    assert bob is not None and bob.quota_bytes == 1 << 30 and not bob.admin
    auth = Authenticator(admin_store, hasher, AuthCache(0))
    assert await auth.authenticate("bob@example.org", "pw1") is not None

    await b.get("/admin/users/bob@example.org")
    await b.post("/admin/users/password", {"address": "bob@example.org", "password": "pw2"})
    assert await auth.authenticate("bob@example.org", "pw1") is None
    assert await auth.authenticate("bob@example.org", "pw2") is not None
    await b.post("/admin/users/quota", {"address": "bob@example.org", "quota": ""})
    await b.post("/admin/users/admin", {"address": "bob@example.org", "admin": "on"})
    bob = await admin_store.get_user("bob@example.org")
    assert bob is not None and bob.quota_bytes is None and bob.admin

    await b.post("/admin/aliases/add", {"source": "info@example.org", "target": "bob@example.org"})
    assert await admin_store.alias_targets("info@example.org") == ["bob@example.org"]
    # A refusal is shown as the command line says it, and changes nothing.
    r = await b.post("/admin/aliases/add", {"source": "bob@example.org", "target": USER})
    page = await b.get(r.location)
    assert "Refused: bob@example.org is a user; an alias cannot take its place" in page.text
    await b.post("/admin/domains/catchall", {"domain": "example.org", "target": USER})
    assert (await admin_store.get_domain("example.org")).catch_all == USER  # type: ignore[union-attr]
    await b.post(
        "/admin/aliases/remove", {"source": "info@example.org", "target": "bob@example.org"}
    )
    assert await admin_store.alias_targets("info@example.org") == []
    await b.post("/admin/users/remove", {"address": "bob@example.org"})
    assert await admin_store.get_user("bob@example.org") is None

    entries = [(e.actor, e.action, e.detail) for e in reversed(await admin_store.list_audit(50))]
    assert [a for _, a, _ in entries] == [
        "user add",
        "user passwd",
        "user quota",
        "user admin",
        "alias add",
        "domain catchall",
        "alias remove",
        "user remove",
    ]
    assert {actor for actor, _, _ in entries} == {f"web:{ADMIN}"}
    assert all("pw1" not in d and "pw2" not in d for _, _, d in entries)
    audit = (await b.get("/admin/audit")).text
    assert "user passwd" in audit and "bob@example.org" in audit


async def test_a_password_reset_signs_the_user_out(browser, admin_store: Store) -> None:
    user = await browser()
    await user.sign_in(USER, PASSWORD)
    assert (await user.get("/me")).status == 200
    b = await _admin(browser)
    await b.get(f"/admin/users/{USER}")
    await b.post("/admin/users/password", {"address": USER, "password": "new one"})
    assert (await user.get("/me")).location == "/login"


async def test_app_passwords_log_in_to_mail_until_revoked(
    browser, admin_store: Store, hasher: PasswordHasher
) -> None:
    b = await browser()
    await b.sign_in(USER, PASSWORD)
    await b.get("/me")
    page = await b.post("/me/app-passwords/add", {"name": "phone"})
    assert page.status == 200 and "It is shown only now" in page.text
    secret = page.text.split('id="new-app-password"')[1].split("<code>")[1].split("</code>")[0]
    auth = Authenticator(admin_store, hasher, AuthCache(0))
    user = await auth.authenticate(USER, secret)  # what IMAP, POP3 and SMTP AUTH call
    assert user is not None and user.address == USER
    assert secret not in (await b.get("/me")).text  # shown once
    await b.post("/me/app-passwords/remove", {"name": "phone"})
    assert await auth.authenticate(USER, secret) is None
    assert await auth.authenticate(USER, PASSWORD) is not None


async def test_a_user_changes_their_own_password(
    browser, admin_store: Store, hasher: PasswordHasher
) -> None:
    b = await browser()
    await b.sign_in(USER, PASSWORD)
    await b.get("/me")
    r = await b.post("/me/password", {"current": "wrong", "new": "n1", "again": "n1"})
    assert "the current password is wrong" in (await b.get(r.location)).text
    old_cookie = b.cookies["__Host-courriel"]
    r = await b.post("/me/password", {"current": PASSWORD, "new": "n1", "again": "n1"})
    assert r.location == "/me"
    assert b.cookies["__Host-courriel"] != old_cookie  # a new session for this browser
    assert "Your password is changed" in (await b.get("/me")).text
    auth = Authenticator(admin_store, hasher, AuthCache(0))
    assert await auth.authenticate(USER, "n1") is not None
    assert await auth.authenticate(USER, PASSWORD) is None


async def test_queue_retry_and_remove(browser, admin_store: Store) -> None:
    now = time.time()
    entry = NewEntry(
        "Q1WEBADMIN",
        "a@example.org",
        (NewRecipient("x@remote.example", "remote.example"),),
        b"Subject: t\r\n\r\nhi\r\n",
    )
    ident = await admin_store.queue.enqueue(entry, now + 3600)  # first attempt in an hour
    assert (await admin_store.queue.get(ident)).next_attempt > now
    b = await _admin(browser)
    page = await b.get("/admin/queue")
    assert ident in page.text and "x@remote.example" in page.text
    await b.post("/admin/queue/retry", {"id": ident.lower()})
    assert (await admin_store.queue.get(ident)).next_attempt <= time.time()
    await b.post("/admin/queue/remove", {"id": ident})
    assert await admin_store.queue.list_entries() == []
    r = await b.post("/admin/queue/remove", {"id": ident})
    assert "Refused" in (await b.get(r.location)).text
    assert [e.action for e in await admin_store.list_audit(5)] == ["queue remove", "queue retry"]


async def test_domains_are_added_and_removed(browser, admin_store: Store) -> None:
    b = await _admin(browser)
    await b.get("/admin/domains")
    await b.post("/admin/domains/add", {"domain": "Ünïcode.example"})
    assert await admin_store.get_domain("xn--ncode-cta3g.example") is not None
    assert len(await admin_store.dkim_keys("xn--ncode-cta3g.example")) == 2  # as the CLI does
    await b.post("/admin/domains/remove", {"domain": "example.org"})  # still has users
    assert await admin_store.get_domain("example.org") is not None
    await b.post("/admin/domains/remove", {"domain": "xn--ncode-cta3g.example"})
    assert await admin.list_domains(admin_store) == [await admin_store.get_domain("example.org")]


async def test_the_dns_records_are_checked_live(
    admin_store: Store, hasher: PasswordHasher, tmp_path, need_program
) -> None:
    if dnsmasq.program() is None:
        need_program("dnsmasq")  # skipped here, failed under COURRIEL_REQUIRE_ALL
    zone = dnsmasq.Zone(
        domains=["example.org", HOSTNAME],
        mx=[("example.org", HOSTNAME, 10)],
        txt={"example.org": "v=spf1 a -all"},  # not what courriel asks for
    )
    async with dnsmasq.start_dnsmasq(zone) as dns_server:
        cfg = admin_config(tmp_path / "dns", nameservers=(dns_server.nameserver,))
        client = TestClient(TestServer(admin_app(admin_store, cfg, hasher)))
        await client.start_server()
        try:
            b = Browser(client)
            await b.sign_in(ADMIN, PASSWORD)
            page = (await b.get("/admin/domains/example.org")).text
        finally:
            await client.close()
    rows = {
        (m.group(2), m.group(3)): m.group(1)
        for m in re.finditer(
            r'class="status \w+">(\w+)</span>.*?<td>(\w+)</td>\s*<td><code>([^<]+)</code>',
            page,
            re.S,
        )
    }
    assert rows[("MX", "example.org")] == "OK"
    assert rows[("TXT", "example.org")] == "WRONG"  # found, but not the SPF record asked for
    assert rows[("TXT", "_dmarc.example.org")] == "MISSING"
    assert f"{HOSTNAME} has no address" in page  # the reverse DNS check, from the same server


async def test_an_admin_makes_and_revokes_a_users_app_password(
    browser, admin_store: Store, hasher: PasswordHasher
) -> None:
    b = await _admin(browser)
    await b.get(f"/admin/users/{USER}")
    page = await b.post("/admin/users/app-passwords/add", {"address": USER, "name": "laptop"})
    secret = page.text.split('id="new-app-password"')[1].split("<code>")[1].split("</code>")[0]
    auth = Authenticator(admin_store, hasher, AuthCache(0))
    assert await auth.authenticate(USER, secret) is not None
    await b.post("/admin/users/app-passwords/remove", {"address": USER, "name": "laptop"})
    assert await auth.authenticate(USER, secret) is None
    r = await b.post("/admin/users/app-passwords/add", {"address": USER, "name": " "})
    assert "Refused: a device name needs 1 to 64" in (await b.get(r.location)).text


async def test_the_only_administrator_cannot_lock_everyone_out(browser, admin_store: Store) -> None:
    b = await _admin(browser)
    await b.get(f"/admin/users/{ADMIN}")
    r = await b.post("/admin/users/admin", {"address": ADMIN})  # no "admin": take the rights
    assert "is the only administrator" in (await b.get(r.location)).text
    r = await b.post("/admin/users/remove", {"address": ADMIN})
    assert "is the only administrator" in (await b.get(r.location)).text
    root = await admin_store.get_user(ADMIN)
    assert root is not None and root.admin
