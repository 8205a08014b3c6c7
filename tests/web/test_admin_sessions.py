"""Signing in to the web admin: cookies, fixation, CSRF, expiry, rights and login limits."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import AuthConfig
from courriel.store.access import secret_digest
from courriel.store.base import Store
from courriel.testing.webadmin import ADMIN, PASSWORD, USER, Browser, admin_app, admin_config
from courriel.web import admin_session
from courriel.web.admin_session import COOKIE, LOGIN_COOKIE


async def test_sign_in_sets_a_strict_secure_cookie(browser) -> None:
    b = await browser()
    login = await b.get("/login")
    assert login.status == 200 and 'name="password"' in login.text
    assert "script-src" not in login.headers["Content-Security-Policy"]  # no script allowed
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    r = await b.post("/login", {"username": ADMIN, "password": PASSWORD})
    assert (r.status, r.location) == (303, "/")
    cookie = b.set_cookies[COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/" and not cookie["domain"]
    assert len(cookie.value) >= 40
    assert (await b.get("/")).location == "/admin/domains"
    assert LOGIN_COOKIE not in b.cookies  # the sign-in form's token is used up


async def test_a_planted_session_id_never_becomes_a_signed_in_one(browser, admin_store) -> None:
    attacker = await browser()
    await attacker.sign_in(USER, PASSWORD)
    planted = attacker.cookies[COOKIE]
    victim = await browser()
    victim.cookies[COOKIE] = planted  # fixation: the victim's browser holds the attacker's id
    await victim.sign_in(ADMIN, PASSWORD)
    assert victim.cookies[COOKIE] != planted
    # The planted id is gone: it names no session at all, let alone the administrator's.
    assert await admin_store.get_session(secret_digest(planted)) is None
    assert (await attacker.get("/admin/users")).status == 303
    assert (await victim.get("/admin/users")).status == 200


async def test_wrong_password_and_app_password_do_not_sign_in(browser, admin_store) -> None:
    b = await browser()
    r = await b.sign_in(USER, "wrong")
    assert r.status == 401 and "Wrong address or password" in r.text
    assert COOKIE not in b.cookies
    await b.sign_in(USER, PASSWORD)
    await b.get("/me")
    r = await b.post("/me/app-passwords/add", {"name": "phone"})
    secret = r.text.split('id="new-app-password"')[1].split("<code>")[1].split("</code>")[0]
    other = await browser()
    assert (await other.sign_in(USER, secret)).status == 401  # mail only, not the account


@pytest.mark.parametrize("token", [None, "forged"])
async def test_forms_without_the_right_csrf_token_are_refused(
    browser, admin_store: Store, token: str | None
) -> None:
    anonymous = await browser()
    await anonymous.get("/login")
    fields = {"username": ADMIN, "password": PASSWORD}
    if token is not None:
        fields["csrf"] = token
    assert (await anonymous.post("/login", fields, csrf=False)).status == 403
    assert COOKIE not in anonymous.cookies

    b = await browser()
    await b.sign_in(ADMIN, PASSWORD)
    await b.get("/admin/domains")
    fields = {"domain": "forged.example"}
    if token is not None:
        fields["csrf"] = token
    for path in ("/admin/domains/add", "/me/app-passwords/add", "/logout"):
        assert (await b.post(path, fields, csrf=False)).status == 403
    assert await admin_store.get_domain("forged.example") is None
    # The same form with the session's token goes through.
    await b.get("/admin/domains")
    assert (await b.post("/admin/domains/add", {"domain": "forged.example"})).status == 303
    assert await admin_store.get_domain("forged.example") is not None


async def test_another_sessions_token_does_not_do(browser, admin_store: Store) -> None:
    a, b = await browser(), await browser()
    await a.sign_in(ADMIN, PASSWORD)
    await b.sign_in(ADMIN, PASSWORD)
    await a.get("/admin/domains")
    r = await b.post("/admin/domains/add", {"domain": "x.example", "csrf": a.csrf()}, csrf=False)
    assert r.status == 403 and await admin_store.get_domain("x.example") is None


async def test_users_are_refused_the_admin_pages(browser, admin_store: Store) -> None:
    b = await browser()
    await b.sign_in(USER, PASSWORD)
    assert (await b.get("/")).location == "/me"
    for path in ("/admin/domains", "/admin/users", "/admin/audit", "/admin/status"):
        assert (await b.get(path)).status == 403
    await b.get("/me")
    assert (await b.post("/admin/domains/add", {"domain": "mine.example"})).status == 403
    assert await admin_store.get_domain("mine.example") is None


async def test_visitors_are_sent_to_sign_in(browser) -> None:
    b = await browser()
    for path in ("/", "/me", "/admin/domains", "/admin/users/root@example.org"):
        r = await b.get(path)
        assert (r.status, r.location) == (303, "/login")
    assert (await b.post("/admin/domains/add", {"domain": "a.example"}, csrf=False)).status == 403


async def test_sign_out_ends_the_session(browser, admin_store: Store) -> None:
    b = await browser()
    await b.sign_in(ADMIN, PASSWORD)
    sid = b.cookies[COOKIE]
    await b.get("/admin/domains")
    r = await b.post("/logout", {})
    assert (r.status, r.location) == (303, "/login")
    assert await admin_store.get_session(secret_digest(sid)) is None
    b.cookies[COOKIE] = sid  # replaying the old cookie
    assert (await b.get("/admin/domains")).location == "/login"


async def test_idle_and_old_sessions_end(browser, admin_store: Store) -> None:
    b = await browser()
    await b.sign_in(ADMIN, PASSWORD)
    digest = secret_digest(b.cookies[COOKIE])
    now = int(time.time())
    await admin_store.touch_session(digest, now - admin_session.IDLE_SECONDS - 5)
    assert (await b.get("/admin/domains")).location == "/login"
    assert await admin_store.get_session(digest) is None

    await b.sign_in(ADMIN, PASSWORD)
    digest = secret_digest(b.cookies[COOKIE])
    session = await admin_store.get_session(digest)
    assert session is not None
    # Used a minute ago but begun longer ago than the absolute limit.
    await admin_store.remove_session(digest)
    await admin_store.add_session(
        digest,
        session.user_id,
        session.csrf,
        now - admin_session.MAX_SECONDS - 5,
        expired_before=0,
    )
    await admin_store.touch_session(digest, now - 60)
    assert (await b.get("/admin/domains")).location == "/login"


async def test_failed_logins_of_any_protocol_count_against_the_web(
    browser, admin_store: Store
) -> None:
    # What IMAP, POP3 and SMTP AUTH record on a failure, from the same client address.
    limiter = AuthLimiter(admin_store, AuthConfig(failure_delay_seconds=0))
    for _ in range(AuthConfig().max_failures_per_ip):
        await limiter.failed("127.0.0.1", "someone@example.org")
    b = await browser()
    r = await b.sign_in(ADMIN, PASSWORD)  # the right password, but the address is over its limit
    assert r.status == 429 and "Too many failed logins from your address" in r.text
    assert COOKIE not in b.cookies


async def test_passwords_are_never_logged(browser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    b = await browser()
    await b.sign_in(USER, "guess-Xq7")
    await b.sign_in(USER, PASSWORD)
    await b.get("/me")
    await b.post("/me/password", {"current": PASSWORD, "new": "new-Zr4", "again": "new-Zr4"})
    admin = await browser()
    await admin.sign_in(ADMIN, PASSWORD)
    await admin.get("/admin/users")
    await admin.post("/admin/users/add", {"address": "eve@example.org", "password": "pw-Kd9"})
    logged = caplog.text
    assert "web sign-in failed" in logged and "admin action" in logged  # the log was captured
    for secret in ("guess-Xq7", PASSWORD, "new-Zr4", "pw-Kd9"):
        assert secret not in logged


async def test_a_session_is_good_on_every_worker(
    browser, admin_store: Store, hasher: PasswordHasher, tmp_path: Path
) -> None:
    b = await browser()
    await b.sign_in(ADMIN, PASSWORD)
    # A second application on the same store: another worker process, or another machine.
    other = TestClient(TestServer(admin_app(admin_store, admin_config(tmp_path / "w2"), hasher)))
    await other.start_server()
    try:
        elsewhere = Browser(other, cookies=dict(b.cookies))
        page = await elsewhere.get("/admin/users")
        assert page.status == 200 and USER in page.text
        assert (await elsewhere.post("/admin/domains/add", {"domain": "w2.example"})).status == 303
    finally:
        await other.close()
    assert await admin_store.get_domain("w2.example") is not None
