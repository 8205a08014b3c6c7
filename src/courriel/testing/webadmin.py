"""The web admin in-process, and a small browser for it that keeps cookies as a browser would.

Theory of operation
-------------------
``admin_app`` builds the https application with the web admin on a store the test made, with
the test's hasher and limits, so the aiohttp test client can call every page without sockets
or TLS. The admin's cookies are ``Secure`` and ``__Host-`` prefixed, which aiohttp's own cookie
jar will not send back over the test client's plain HTTP; ``Browser`` therefore keeps them
itself: it records each Set-Cookie (and its attributes, for the tests to check), sends the
cookies back on every request, and follows no redirect on its own, so a test sees every
response. ``csrf`` is the CSRF token of the last page shown that had a form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from courriel import clientsettings, config
from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import AuthConfig, Config, DnsConfig
from courriel.net.tls import TLSManager
from courriel.store.base import Store
from courriel.web import mtasts, settings
from courriel.web.admin_context import Access, AdminContext
from courriel.web.app import Site, application

HOSTNAME = "mail.example.test"
# The accounts of the ``admin_store`` fixture (tests/web/conftest.py).
ADMIN = "root@example.org"
USER = "alice@example.org"
PASSWORD = "correct horse battery"  # noqa: S105 - a test account's password
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def admin_config(
    data_dir: Path, *, auth: AuthConfig | None = None, nameservers: tuple[str, ...] = ()
) -> Config:
    """A configuration for the in-process admin: cheap hashing, no failure delay, and for the
    DNS check ``nameservers``, by default one that answers nothing (a closed loopback port)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Config(
        path=data_dir / config.CONFIG_NAME,
        data_dir=data_dir,
        hostname=HOSTNAME,
        auth=auth or AuthConfig(failure_delay_seconds=0, cache_seconds=0),
        dns=DnsConfig(nameservers=nameservers or ("127.0.0.1:9",), timeout_seconds=1.0),
    )


def admin_app(store: Store, cfg: Config, hasher: PasswordHasher) -> web.Application:
    tls = TLSManager(cfg)
    tls.load()
    access = Access(
        Authenticator(store, hasher, AuthCache(cfg.auth.cache_seconds)),
        AuthLimiter(store, cfg.auth),
        hasher,
    )
    offer = settings.offer(cfg.hostname, [], 443)
    site = Site(store, offer, mtasts.policy(cfg, True))
    endpoints = [clientsettings.Endpoint("imaps", True, "", 993)]
    ctx = AdminContext(store, cfg, tls, access, endpoints, {"https": [("", 443)]})
    return application(site, ctx)


@dataclass
class Page:
    status: int
    text: str
    location: str
    headers: Any


@dataclass
class Browser:
    client: TestClient  # type: ignore[type-arg]
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: dict[str, Morsel[str]] = field(default_factory=dict)  # the last Set-Cookie of each
    last: Page | None = None
    token: str = ""  # the CSRF token of the last page that had a form

    async def request(self, method: str, path: str, **kwargs: Any) -> Page:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.client.request(
            method, path, headers=headers, allow_redirects=False, **kwargs
        ) as r:
            text = await r.text()
            for header in r.headers.getall("Set-Cookie", []):
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    self.set_cookies[name] = morsel
                    if morsel.value == "" or morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            page = Page(r.status, text, r.headers.get("Location", ""), r.headers)
        self.last = page
        m = _CSRF.search(text)
        if m is not None:
            self.token = m.group(1)
        return page

    async def get(self, path: str) -> Page:
        return await self.request("GET", path)

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> Page:
        fields = dict(data)
        if csrf and "csrf" not in fields:
            fields["csrf"] = self.csrf()
        return await self.request("POST", path, data=fields)

    def csrf(self) -> str:
        assert self.token, "no page with a CSRF token was shown yet"
        return self.token

    async def sign_in(self, username: str, password: str) -> Page:
        await self.get("/login")
        return await self.post("/login", {"username": username, "password": password})
