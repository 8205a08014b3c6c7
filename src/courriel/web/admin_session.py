"""Signing in and out of the web admin: sessions in the store, CSRF tokens, login limits.

Theory of operation
-------------------
A session is a random id (256 bits) in the cookie ``__Host-courriel``: Secure (the admin is
served on https only), HttpOnly (no script reads it), SameSite=Strict (no other site's page
sends it), Path=/ and no Domain (the ``__Host-`` prefix makes browsers hold us to that). The
store keeps only the id's SHA-256 with the user, the session's CSRF token, when it began and
when it was last used, so every worker and node accepts it and a copy of the database gives
no session away. A session ends after ``IDLE_SECONDS`` without a request or ``MAX_SECONDS``
after sign-in, whichever comes first; ``seen`` is written at most once a minute.

Session fixation: a new id is made at every sign-in, and the session the browser had before
(if any) is deleted, so an id planted in a victim's browser never becomes a signed-in one.

CSRF: every form of a signed-in page carries the session's token in a hidden ``csrf`` field, and
every POST is refused (403) unless it matches (compared in constant time). The sign-in form has
no session yet; it uses a double-submit token instead: a random value both in a short-lived
``__Host-courriel-login`` cookie and in the form, which another site can neither read nor set.

Sign-in goes through the same ``AuthLimiter`` as IMAP, POP3 and SMTP AUTH: failures count per
client address and per account in the store, and an address or account over its limit is
refused before the password is checked. App passwords do not sign in here. Passwords are never
logged; the log says who signed in or failed, from where.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from aiohttp import web

from courriel.logs import kv
from courriel.store.access import secret_digest
from courriel.store.base import User
from courriel.web.admin_context import AdminContext

log = logging.getLogger("courriel.web.admin")

COOKIE = "__Host-courriel"
LOGIN_COOKIE = "__Host-courriel-login"
FLASH_COOKIE = "__Host-courriel-flash"
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 3600
_TOUCH_SECONDS = 60
_LOGIN_FORM_SECONDS = 3600
MAX_FIELD = 4096  # a form field longer than this is refused before anything else


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in request: who, with which session."""

    user: User
    csrf: str
    digest: str

    @property
    def actor(self) -> str:
        return f"web:{self.user.address}"


Page = Callable[[web.Request, Visitor], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict"
    )


def delete_cookie(response: web.StreamResponse, name: str) -> None:
    # The same attributes as when it was set: browsers hold a __Host- cookie to them.
    response.del_cookie(name, path="/", secure=True, httponly=True, samesite="Strict")


def flash(response: web.StreamResponse, message: str) -> None:
    """A one-line message for the next page shown (after a redirect)."""
    set_cookie(response, FLASH_COOKIE, quote(message[:300]), 60)


def flash_of(request: web.Request) -> str:
    return unquote(request.cookies.get(FLASH_COOKIE, ""))[:300]


def clear_flash(response: web.StreamResponse) -> None:
    delete_cookie(response, FLASH_COOKIE)


async def form(request: web.Request) -> dict[str, str]:
    """The POSTed fields, each bounded (aiohttp bounds the whole body)."""
    data = await request.post()
    out = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise web.HTTPBadRequest(text="file uploads are not accepted here\n")
        if len(value) > MAX_FIELD:
            raise web.HTTPBadRequest(text=f"the field {key!r} is too long\n")
        out[key] = value
    return out


class Sessions:
    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    async def visitor(self, request: web.Request) -> Visitor | None:
        """The signed-in user of this request, or None (no, unknown or expired session)."""
        sid = request.cookies.get(COOKIE, "")
        if not sid or len(sid) > 100:
            return None
        digest = secret_digest(sid)
        session = await self.ctx.store.get_session(digest)
        if session is None:
            return None
        now = int(time.time())
        if now - session.seen > IDLE_SECONDS or now - session.created > MAX_SECONDS:
            await self.ctx.store.remove_session(digest)
            return None
        user = await self.ctx.store.get_user_by_id(session.user_id)
        if user is None:
            return None
        if now - session.seen >= _TOUCH_SECONDS:
            await self.ctx.store.touch_session(digest, now)
        return Visitor(user, session.csrf, digest)

    async def start(self, request: web.Request, user: User, response: web.StreamResponse) -> None:
        """Signs ``user`` in with a new session id; the browser's old session ends."""
        old = request.cookies.get(COOKIE, "")
        if old and len(old) <= 100:
            await self.ctx.store.remove_session(secret_digest(old))
        sid = secrets.token_urlsafe(32)
        now = int(time.time())
        await self.ctx.store.add_session(
            secret_digest(sid),
            user.id,
            secrets.token_urlsafe(32),
            now,
            expired_before=now - IDLE_SECONDS,
        )
        set_cookie(response, COOKIE, sid, MAX_SECONDS)

    def page(self, *, admin: bool) -> Callable[[Page], Handler]:
        """Wraps a handler: signed-in users only (administrators only with ``admin``), and a
        POST only with the session's CSRF token."""

        def wrap(handler: Page) -> Handler:
            async def run(request: web.Request) -> web.StreamResponse:
                visitor = await self.visitor(request)
                if visitor is None:
                    if request.method == "POST":
                        raise web.HTTPForbidden(text="not signed in (or the session expired)\n")
                    raise web.HTTPSeeOther("/login")
                if admin and not visitor.user.admin:
                    log.info(
                        "admin page refused to a non-administrator",
                        extra=kv(user=visitor.user.address, path=request.path),
                    )
                    raise web.HTTPForbidden(text="this page is for administrators\n")
                if request.method == "POST":
                    fields = await form(request)
                    if not hmac.compare_digest(fields.get("csrf", ""), visitor.csrf):
                        log.info(
                            "form refused: missing or wrong CSRF token",
                            extra=kv(user=visitor.user.address, path=request.path),
                        )
                        raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong\n")
                return await handler(request, visitor)

            return run

        return wrap

    # --- the sign-in and sign-out pages -------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        # Shown also to a signed-in browser: signing in again (as someone else) starts a new
        # session and ends the one the browser had, whoever planted it.
        return self._login_page(request, "")

    def _login_page(self, request: web.Request, error: str, status: int = 200) -> web.Response:
        # The browser's token while it has one, so two sign-in tabs do not undo each other.
        token = request.cookies.get(LOGIN_COOKIE, "")
        if not (40 <= len(token) <= 64):
            token = secrets.token_urlsafe(32)
        response = self.ctx.render.page(
            "login.html", status=status, csrf=token, error=error, visitor=None, flash=""
        )
        set_cookie(response, LOGIN_COOKIE, token, _LOGIN_FORM_SECONDS)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        fields = await form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(fields.get("csrf", ""), expected):
            log.info("sign-in refused: missing or wrong CSRF token")
            raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong\n")
        username = fields.get("username", "").strip()
        password = fields.get("password", "")
        ip = request.remote or ""
        limiter = self.ctx.limiter
        refusal = await limiter.check(ip, username)
        if refusal is not None:
            log.info("web sign-in refused", extra=kv(user=username, ip=ip, limit=refusal.limit))
            return self._login_page(request, refusal.text, 429)
        user = await self.ctx.auth.authenticate(username, password, app_passwords=False)
        if user is None:
            log.info("web sign-in failed", extra=kv(user=username, ip=ip))
            await limiter.failed(ip, username)
            return self._login_page(request, "Wrong address or password.", 401)
        await limiter.succeeded(ip, user.address)
        log.info("web sign-in", extra=kv(user=user.address, ip=ip, admin=user.admin))
        response = web.HTTPSeeOther("/")
        await self.start(request, user, response)
        delete_cookie(response, LOGIN_COOKIE)
        raise response

    async def logout(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        """POST only, through ``page``: a CSRF token is needed to sign someone out too."""
        await self.ctx.store.remove_session(visitor.digest)
        log.info("web sign-out", extra=kv(user=visitor.user.address))
        response = web.HTTPSeeOther("/login")
        delete_cookie(response, COOKIE)
        raise response

    async def home(self, request: web.Request) -> web.StreamResponse:
        visitor = await self.visitor(request)
        if visitor is None:
            raise web.HTTPSeeOther("/login")
        raise web.HTTPSeeOther("/admin/domains" if visitor.user.admin else "/me")
