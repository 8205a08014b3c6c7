"""The JSON API: Bearer tokens only, the same operations as the command line, audited."""

from __future__ import annotations

import json

from courriel import admin_access
from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.store.base import Store
from courriel.testing.webadmin import ADMIN, PASSWORD, USER


async def _token(store: Store) -> dict[str, str]:
    _, token = await admin_access.add_api_token(store, "script")
    return {"Authorization": f"Bearer {token}"}


async def test_no_valid_token_no_answer(browser, admin_store: Store) -> None:
    b = await browser()
    r = await b.request("GET", "/api/v1/domains")
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    for value in ("Bearer courriel_nope", "Basic cm9vdDpwdw==", "Bearer "):
        r = await b.request("GET", "/api/v1/users", headers={"Authorization": value})
        assert r.status == 401
    # A signed-in browser session is no API credential (so no cross-site request can use it).
    await b.sign_in(ADMIN, PASSWORD)
    assert (await b.request("POST", "/api/v1/domains", json={"name": "x.example"})).status == 401
    assert await admin_store.get_domain("x.example") is None
    # A revoked token stops working.
    headers = await _token(admin_store)
    assert (await b.request("GET", "/api/v1/domains", headers=headers)).status == 200
    await admin_access.remove_api_token(admin_store, "script")
    assert (await b.request("GET", "/api/v1/domains", headers=headers)).status == 401


async def test_domains_users_aliases_and_queue(
    browser, admin_store: Store, hasher: PasswordHasher
) -> None:
    h = await _token(admin_store)
    b = await browser()

    async def call(method: str, path: str, body: object = None) -> tuple[int, object]:
        kwargs = {"headers": h} | ({} if body is None else {"json": body})
        r = await b.request(method, f"/api/v1{path}", **kwargs)
        return r.status, json.loads(r.text)

    assert await call("POST", "/domains", {"name": "api.example"}) == (201, {"ok": True})
    status, body = await call("POST", "/domains", {"name": "api.example"})
    assert (status, body) == (409, {"error": "domain api.example already exists"})
    assert (await call("POST", "/domains", {"name": "bad domain"}))[0] == 400
    assert (await call("POST", "/domains", ["not", "an object"]))[0] == 400
    status, body = await call("GET", "/domains")
    assert status == 200 and {"name": "api.example", "catch_all": None} in body  # type: ignore[operator]

    user = {"address": "dan@api.example", "password": "pw", "quota": "10M", "admin": True}
    assert (await call("POST", "/users", user))[0] == 201
    status, users = await call("GET", "/users?domain=api.example")
    assert users == [
        {
            "address": "dan@api.example",
            "admin": True,
            "quota_bytes": 10 << 20,
            "used_bytes": 0,
            "messages": 0,
        }
    ]
    auth = Authenticator(admin_store, hasher, AuthCache(0))
    assert await auth.authenticate("dan@api.example", "pw") is not None
    change = {"password": "pw2", "quota": None, "admin": False}
    assert (await call("PATCH", "/users/dan@api.example", change))[0] == 200
    assert await auth.authenticate("dan@api.example", "pw2") is not None
    dan = await admin_store.get_user("dan@api.example")
    assert dan is not None and not dan.admin and dan.quota_bytes is None
    assert (await call("PATCH", "/users/nobody@api.example", {"admin": True}))[0] == 404
    assert (await call("PATCH", "/users/dan@api.example", {}))[0] == 400

    alias = {"source": "info@api.example", "target": "dan@api.example"}
    assert (await call("POST", "/aliases", alias))[0] == 201
    assert (await call("GET", "/aliases?domain=api.example"))[1] == [alias]
    status, _ = await call("DELETE", "/aliases?source=info@api.example&target=dan@api.example")
    assert status == 200 and await admin_store.alias_targets("info@api.example") == []
    assert (await call("PUT", "/domains/api.example/catchall", {"target": USER}))[0] == 200
    assert (await admin_store.get_domain("api.example")).catch_all == USER  # type: ignore[union-attr]

    assert (await call("GET", "/queue")) == (200, [])
    assert (await call("POST", "/queue/NOSUCHID/retry"))[0] == 404
    assert (await call("DELETE", "/queue/NOSUCHID"))[0] == 404

    assert (await call("DELETE", "/domains/api.example"))[0] == 409  # still has a user
    assert (await call("DELETE", "/users/dan@api.example"))[0] == 200
    assert (await call("PUT", "/domains/api.example/catchall", {"target": None}))[0] == 200
    assert (await call("DELETE", "/domains/api.example"))[0] == 200

    entries = list(reversed(await admin_store.list_audit(50)))
    assert {e.actor for e in entries} == {"api:script"}
    assert [e.action for e in entries] == [
        "domain add",
        "user add",
        "user change",
        "alias add",
        "alias remove",
        "domain catchall",
        "user remove",
        "domain catchall",
        "domain remove",
    ]
    assert all("pw2" not in e.detail for e in entries)  # what changed, never to what
    assert entries[2].detail == "dan@api.example: password, quota none, admin off"


async def test_tokens_made_and_revoked_on_the_admin_page(browser, admin_store: Store) -> None:
    admin = await browser()
    await admin.sign_in(ADMIN, PASSWORD)
    await admin.get("/admin/tokens")
    page = await admin.post("/admin/tokens/add", {"name": "deploy"})
    assert page.status == 200 and "It is shown only now" in page.text
    token = page.text.split('id="new-token"')[1].split("<code>")[1].split("</code>")[0]
    assert token not in (await admin.get("/admin/tokens")).text
    api = await browser()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.request("GET", "/api/v1/users", headers=headers)).status == 200
    await admin.post("/admin/tokens/remove", {"name": "deploy"})
    assert (await api.request("GET", "/api/v1/users", headers=headers)).status == 401
    actions = [(e.actor, e.action, e.detail) for e in await admin_store.list_audit(5)]
    assert actions == [
        (f"web:{ADMIN}", "token remove", "deploy"),
        (f"web:{ADMIN}", "token add", "deploy"),
    ]
