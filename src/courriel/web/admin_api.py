"""The JSON API under /api/v1/: domains, users, aliases and the queue, for scripts.

Theory of operation
-------------------
Every request carries ``Authorization: Bearer TOKEN`` (RFC 6750 §2.1) with a token made by
``courriel token add NAME`` or on the admin's token page; the store keeps only its SHA-256, and
a token has administrator rights. A missing or unknown token gets 401 with a
``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3). No cookie is read here, so the API is
not open to cross-site request forgery, and the session pages are not open to tokens.

The operations are those of the command line and the admin pages (``courriel.admin``,
``admin_access``, ``admin_queue``); each change is written to the audit log with the actor
``api:NAME``. Refusals come back as ``{"error": "..."}``: 400 for input that can never be right,
404 for an unknown name or id, 409 for a refusal of the current state (a duplicate, a domain
still in use). Request bodies are JSON objects, bounded by the application's body limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from courriel import admin, admin_access, admin_queue
from courriel.admin import AdminError, InputError
from courriel.store.base import NotFound
from courriel.web.admin_context import AdminContext

ApiHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/api/v1"


def _error(status: int, text: str, **headers: str) -> web.Response:
    return web.json_response({"error": text}, status=status, headers=headers)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise InputError("the request body must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{key!r} must be a string")
    return value


class Api:
    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", f"{PREFIX}/domains", self._auth(self.domains))
        add("POST", f"{PREFIX}/domains", self._auth(self.domain_add))
        add("DELETE", f"{PREFIX}/domains/{{name}}", self._auth(self.domain_remove))
        add("PUT", f"{PREFIX}/domains/{{name}}/catchall", self._auth(self.catch_all))
        add("GET", f"{PREFIX}/users", self._auth(self.users))
        add("POST", f"{PREFIX}/users", self._auth(self.user_add))
        add("PATCH", f"{PREFIX}/users/{{address}}", self._auth(self.user_change))
        add("DELETE", f"{PREFIX}/users/{{address}}", self._auth(self.user_remove))
        add("GET", f"{PREFIX}/aliases", self._auth(self.aliases))
        add("POST", f"{PREFIX}/aliases", self._auth(self.alias_add))
        add("DELETE", f"{PREFIX}/aliases", self._auth(self.alias_remove))
        add("GET", f"{PREFIX}/queue", self._auth(self.queue))
        add("POST", f"{PREFIX}/queue/{{id}}/retry", self._auth(self.queue_retry))
        add("DELETE", f"{PREFIX}/queue/{{id}}", self._auth(self.queue_remove))

    def _auth(self, handler: ApiHandler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            name = None
            if scheme.lower() == "bearer":
                name = await admin_access.api_token_name(self.ctx.store, token.strip())
            if name is None:
                return _error(
                    401,
                    "a valid API token is needed (Authorization: Bearer TOKEN)",
                    # RFC 6750 §3: the challenge of a request without valid credentials
                    **{"WWW-Authenticate": 'Bearer realm="courriel"'},
                )
            try:
                return await handler(request, f"api:{name}")
            except InputError as e:
                return _error(400, str(e))
            except NotFound as e:
                return _error(404, str(e) or "not found")
            except AdminError as e:
                status = 404 if str(e).startswith("unknown ") else 409
                return _error(status, str(e))

        return run

    async def _done(self, actor: str, action: str, detail: str, status: int = 200) -> web.Response:
        await admin_access.audit(self.ctx.store, actor, action, detail)
        return web.json_response({"ok": True}, status=status)

    # --- domains --------------------------------------------------------------------------------

    async def domains(self, request: web.Request, actor: str) -> web.StreamResponse:
        return web.json_response(
            [
                {"name": d.name, "catch_all": d.catch_all}
                for d in await admin.list_domains(self.ctx.store)
            ]
        )

    async def domain_add(self, request: web.Request, actor: str) -> web.StreamResponse:
        d = await admin.add_domain(self.ctx.store, _text(await _body(request), "name"))
        return await self._done(actor, "domain add", d.name, 201)

    async def domain_remove(self, request: web.Request, actor: str) -> web.StreamResponse:
        name = request.match_info["name"]
        await admin.remove_domain(self.ctx.store, name)
        return await self._done(actor, "domain remove", name)

    async def catch_all(self, request: web.Request, actor: str) -> web.StreamResponse:
        name = request.match_info["name"]
        target = _text(await _body(request), "target", required=False) or None
        await admin.set_catch_all(self.ctx.store, name, target)
        return await self._done(actor, "domain catchall", f"{name} -> {target or 'off'}")

    # --- users ----------------------------------------------------------------------------------

    async def users(self, request: web.Request, actor: str) -> web.StreamResponse:
        domain = request.query.get("domain") or None
        return web.json_response(
            [
                {
                    "address": u.user.address,
                    "admin": u.user.admin,
                    "quota_bytes": u.usage.limit_bytes,
                    "used_bytes": u.usage.bytes,
                    "messages": u.usage.messages,
                }
                for u in await admin.list_users(self.ctx.store, domain)
            ]
        )

    async def user_add(self, request: web.Request, actor: str) -> web.StreamResponse:
        data = await _body(request)
        quota = _text(data, "quota", required=False)
        user = await admin.add_user(
            self.ctx.store,
            self.ctx.hasher,
            _text(data, "address"),
            _text(data, "password"),
            quota_bytes=admin.parse_size(quota) if quota else None,
        )
        if data.get("admin") is True:
            await admin_access.set_admin(self.ctx.store, user.address, True)
        return await self._done(actor, "user add", user.address, 201)

    async def user_change(self, request: web.Request, actor: str) -> web.StreamResponse:
        address = request.match_info["address"]
        data = await _body(request)
        user = await admin.require_user(self.ctx.store, address)
        changed = []
        if "password" in data:
            await admin.set_password(
                self.ctx.store, self.ctx.hasher, user.address, _text(data, "password")
            )
            changed.append("password")
        if "quota" in data:
            quota = _text(data, "quota", required=False)
            await admin.set_quota(
                self.ctx.store, user.address, admin.parse_size(quota) if quota else None
            )
            changed.append(f"quota {quota or 'none'}")
        if "admin" in data:
            if not isinstance(data["admin"], bool):
                raise InputError("'admin' must be true or false")
            await admin_access.set_admin(self.ctx.store, user.address, data["admin"])
            changed.append(f"admin {'on' if data['admin'] else 'off'}")
        if not changed:
            raise InputError("nothing to change: give password, quota or admin")
        return await self._done(actor, "user change", f"{user.address}: {', '.join(changed)}")

    async def user_remove(self, request: web.Request, actor: str) -> web.StreamResponse:
        address = request.match_info["address"]
        await admin_access.remove_user(self.ctx.store, address)
        return await self._done(actor, "user remove", address)

    # --- aliases --------------------------------------------------------------------------------

    async def aliases(self, request: web.Request, actor: str) -> web.StreamResponse:
        domain = request.query.get("domain") or None
        return web.json_response(
            [
                {"source": a.source, "target": a.target}
                for a in await admin.list_aliases(self.ctx.store, domain)
            ]
        )

    async def alias_add(self, request: web.Request, actor: str) -> web.StreamResponse:
        data = await _body(request)
        a = await admin.add_alias(self.ctx.store, _text(data, "source"), _text(data, "target"))
        return await self._done(actor, "alias add", f"{a.source} -> {a.target}", 201)

    async def alias_remove(self, request: web.Request, actor: str) -> web.StreamResponse:
        source = request.query.get("source", "")
        target = request.query.get("target") or None
        await admin.remove_alias(self.ctx.store, source, target)
        return await self._done(actor, "alias remove", f"{source} -> {target or 'all'}")

    # --- queue ----------------------------------------------------------------------------------

    async def queue(self, request: web.Request, actor: str) -> web.StreamResponse:
        return web.json_response(
            [
                {
                    "id": e.id,
                    "sender": e.sender,
                    "created": e.created,
                    "size": e.size,
                    "held": e.held,
                    "recipients": [
                        {
                            "address": r.address,
                            "state": r.state.value,
                            "attempts": r.attempts,
                            "next_attempt": r.next_attempt,
                            "code": r.code,
                            "reason": r.reason,
                        }
                        for r in e.recipients
                    ],
                }
                for e in await admin_queue.entries(self.ctx.store)
            ]
        )

    async def queue_retry(self, request: web.Request, actor: str) -> web.StreamResponse:
        ident = request.match_info["id"]
        await admin_queue.retry(self.ctx.store, ident)
        return await self._done(actor, "queue retry", admin_queue.entry_id(ident))

    async def queue_remove(self, request: web.Request, actor: str) -> web.StreamResponse:
        ident = request.match_info["id"]
        await admin_queue.remove(self.ctx.store, ident)
        return await self._done(actor, "queue remove", admin_queue.entry_id(ident))
