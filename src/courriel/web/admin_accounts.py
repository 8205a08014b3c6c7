"""The admin pages for domains (with their DNS records), users and aliases.

Theory of operation
-------------------
Each GET renders one page from ``courriel.admin``'s listings; each POST runs one operation of
``courriel.admin`` / ``courriel.admin_access`` through ``admin_actions.perform`` (audit log,
message, redirect), exactly what the command line runs. The DNS records of a domain are those
``courriel dns`` prints (``admin_dkim.dns_records``); their live check asks the configured
resolver all questions at once and gives up after ``DNS_CHECK_SECONDS``, so a dead name server
costs the page a few seconds at most and never holds anything else up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from courriel import admin, admin_access, admin_dkim, dnsrecords
from courriel.auth_resolver import AuthResolver
from courriel.store.base import User
from courriel.web.admin_actions import path_of, perform, refuse, show
from courriel.web.admin_context import AdminContext
from courriel.web.admin_session import Sessions, Visitor, form

DNS_CHECK_SECONDS = 4.0


class AccountPages:
    def __init__(self, ctx: AdminContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def show(
        self, request: web.Request, visitor: Visitor, name: str, **context: Any
    ) -> web.Response:
        return show(self.ctx, request, visitor, name, **context)

    def routes(self, app: web.Application) -> None:
        page = self.sessions.page(admin=True)
        app.router.add_get("/admin/domains", page(self.domains))
        app.router.add_post("/admin/domains/add", page(self.domain_add))
        app.router.add_post("/admin/domains/remove", page(self.domain_remove))
        app.router.add_post("/admin/domains/catchall", page(self.catch_all))
        app.router.add_get("/admin/domains/{name}", page(self.domain))
        app.router.add_get("/admin/users", page(self.users))
        app.router.add_post("/admin/users/add", page(self.user_add))
        app.router.add_post("/admin/users/password", page(self.user_password))
        app.router.add_post("/admin/users/quota", page(self.user_quota))
        app.router.add_post("/admin/users/admin", page(self.user_admin))
        app.router.add_post("/admin/users/remove", page(self.user_remove))
        app.router.add_post("/admin/users/app-passwords/add", page(self.app_password_add))
        app.router.add_post("/admin/users/app-passwords/remove", page(self.app_password_remove))
        app.router.add_get("/admin/users/{address}", page(self.user))
        app.router.add_get("/admin/aliases", page(self.aliases))
        app.router.add_post("/admin/aliases/add", page(self.alias_add))
        app.router.add_post("/admin/aliases/remove", page(self.alias_remove))

    # --- domains --------------------------------------------------------------------------------

    async def domains(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        domains = await admin.list_domains(self.ctx.store)
        counts = {}
        for d in domains:
            counts[d.name] = len(await self.ctx.store.list_users(d.name))
        return self.show(request, visitor, "domains.html", domains=domains, counts=counts)

    async def domain(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        try:
            records = await admin_dkim.dns_records(
                self.ctx.cfg, self.ctx.store, request.match_info["name"]
            )
        except admin.AdminError as e:
            raise web.HTTPNotFound(text=f"{e}\n") from None
        name = records[0].name
        domain = await self.ctx.store.get_domain(name)
        findings, reverse = await self._check(records)
        policy = dnsrecords.mta_sts_policy(
            self.ctx.cfg.hostname, not self.ctx.cfg.tls.cert, self.ctx.cfg.mtasts
        )
        return self.show(
            request,
            visitor,
            "domain.html",
            domain=domain,
            findings=findings,
            reverse=reverse,
            hostname=self.ctx.cfg.hostname,
            zone=dnsrecords.zone(records),
            policy=policy,
            zone_value=dnsrecords.zone_value,
        )

    async def _check(
        self, records: list[dnsrecords.Record]
    ) -> tuple[list[dnsrecords.Finding], list[tuple[dnsrecords.Status, str]] | None]:
        """The finding of each record and the host's reverse DNS problems ([] when right,
        None when DNS did not answer in time), asked all at once."""
        cfg = self.ctx.cfg
        timeout = min(cfg.dns.timeout_seconds, DNS_CHECK_SECONDS)
        resolver = AuthResolver(cfg.dns.nameservers, timeout=timeout)
        checks = asyncio.gather(
            dnsrecords.check(records, resolver), dnsrecords.check_reverse(cfg.hostname, resolver)
        )
        try:
            findings, reverse = await asyncio.wait_for(checks, DNS_CHECK_SECONDS)
        except TimeoutError:
            late = "no answer from DNS in time"
            return [dnsrecords.Finding(r, dnsrecords.Status.UNKNOWN, late) for r in records], None
        return findings, reverse

    async def domain_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        name = (await form(request)).get("domain", "")
        return await perform(
            self.ctx,
            visitor,
            admin.add_domain(self.ctx.store, name),
            action="domain add",
            detail=name,
            done=f"Added domain {name}. Publish its DNS records next.",
            back="/admin/domains",
        )

    async def domain_remove(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        name = (await form(request)).get("domain", "")
        return await perform(
            self.ctx,
            visitor,
            admin.remove_domain(self.ctx.store, name),
            action="domain remove",
            detail=name,
            done=f"Removed domain {name}.",
            back="/admin/domains",
        )

    async def catch_all(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        name, target = fields.get("domain", ""), fields.get("target", "").strip()
        return await perform(
            self.ctx,
            visitor,
            admin.set_catch_all(self.ctx.store, name, target or None),
            action="domain catchall",
            detail=f"{name} -> {target or 'off'}",
            done=f"Catch-all of {name}: {target or 'off'}.",
            back=_back(fields.get("back"), "/admin/aliases"),
        )

    # --- users ----------------------------------------------------------------------------------

    async def users(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        users = await admin.list_users(self.ctx.store)
        domains = await admin.list_domains(self.ctx.store)
        return self.show(request, visitor, "users.html", users=users, domains=domains)

    async def user(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        try:
            user = await admin.require_user(self.ctx.store, request.match_info["address"])
        except admin.AdminError as e:
            raise web.HTTPNotFound(text=f"{e}\n") from None
        return await self._user_page(request, visitor, user, None)

    async def _user_page(
        self, request: web.Request, visitor: Visitor, user: User, new: tuple[str, str] | None
    ) -> web.Response:
        aliases = [
            a
            for a in await admin.list_aliases(self.ctx.store)
            if a.target.casefold() == user.address.casefold()
        ]
        return self.show(
            request,
            visitor,
            "user.html",
            user=user,
            usage=await self.ctx.store.quota_usage(user.id),
            aliases=aliases,
            app_passwords=await admin_access.list_app_passwords(self.ctx.store, user),
            new_password=new,
        )

    async def user_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        address, quota = fields.get("address", ""), fields.get("quota", "").strip()

        async def add() -> None:
            size = admin.parse_size(quota) if quota else None
            user = await admin.add_user(
                self.ctx.store,
                self.ctx.hasher,
                address,
                fields.get("password", ""),
                quota_bytes=size,
            )
            if fields.get("admin") == "on":
                await admin_access.set_admin(self.ctx.store, user.address, True)

        role = " (administrator)" if fields.get("admin") == "on" else ""
        return await perform(
            self.ctx,
            visitor,
            add(),
            action="user add",
            detail=f"{address}{role}",
            done=f"Added user {address}{role}.",
            back="/admin/users",
        )

    async def user_password(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        address = fields.get("address", "")

        return await perform(
            self.ctx,
            visitor,
            admin.set_password(
                self.ctx.store, self.ctx.hasher, address, fields.get("password", "")
            ),
            action="user passwd",
            detail=address,
            done=f"New password set for {address}.",
            back=_user_page(address),
        )

    async def user_quota(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        address, quota = fields.get("address", ""), fields.get("quota", "").strip()

        async def change() -> None:
            none = quota.lower() in ("", "none", "unlimited")
            await admin.set_quota(
                self.ctx.store, address, None if none else admin.parse_size(quota)
            )

        return await perform(
            self.ctx,
            visitor,
            change(),
            action="user quota",
            detail=f"{address} {quota or 'none'}",
            done=f"Quota of {address}: {quota or 'unlimited'}.",
            back=_user_page(address),
        )

    async def user_admin(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        address, on = fields.get("address", ""), fields.get("admin") == "on"
        return await perform(
            self.ctx,
            visitor,
            admin_access.set_admin(self.ctx.store, address, on),
            action="user admin",
            detail=f"{address} {'on' if on else 'off'}",
            done=f"{address} {'is' if on else 'is no longer'} an administrator.",
            back=_user_page(address),
        )

    async def user_remove(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        address = (await form(request)).get("address", "")
        return await perform(
            self.ctx,
            visitor,
            admin_access.remove_user(self.ctx.store, address),
            action="user remove",
            detail=address,
            done=f"Removed user {address} and all their mail.",
            back="/admin/users",
        )

    async def app_password_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        """Makes an app password and shows it on the user's page, this once."""
        fields = await form(request)
        address = fields.get("address", "")
        try:
            user = await admin.require_user(self.ctx.store, address)
            made, secret = await admin_access.add_app_password(
                self.ctx.store, user, fields.get("name", "")
            )
        except admin.AdminError as e:
            raise refuse(visitor, "app-password add", e, _user_page(address)) from None
        await admin_access.audit(
            self.ctx.store, visitor.actor, "app-password add", f"{user.address} {made.name}"
        )
        return await self._user_page(request, visitor, user, (made.name, secret))

    async def app_password_remove(
        self, request: web.Request, visitor: Visitor
    ) -> web.StreamResponse:
        fields = await form(request)
        address, name = fields.get("address", ""), fields.get("name", "")

        async def revoke() -> None:
            user = await admin.require_user(self.ctx.store, address)
            await admin_access.remove_app_password(self.ctx.store, user, name)

        return await perform(
            self.ctx,
            visitor,
            revoke(),
            action="app-password remove",
            detail=f"{address} {name}",
            done=f"App password {name!r} of {address} revoked.",
            back=_user_page(address),
        )

    # --- aliases --------------------------------------------------------------------------------

    async def aliases(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        aliases = await admin.list_aliases(self.ctx.store)
        domains = await admin.list_domains(self.ctx.store)
        return self.show(request, visitor, "aliases.html", aliases=aliases, domains=domains)

    async def alias_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        source, target = fields.get("source", ""), fields.get("target", "")
        back = fields.get("back", "")
        return await perform(
            self.ctx,
            visitor,
            admin.add_alias(self.ctx.store, source, target),
            action="alias add",
            detail=f"{source} -> {target}",
            done=f"Added alias {source} -> {target}.",
            back=_back(back, "/admin/aliases"),
        )

    async def alias_remove(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        source, target = fields.get("source", ""), fields.get("target", "") or None
        return await perform(
            self.ctx,
            visitor,
            admin.remove_alias(self.ctx.store, source, target),
            action="alias remove",
            detail=f"{source} -> {target or 'all'}",
            done=f"Removed alias {source}" + (f" -> {target}." if target else "."),
            back="/admin/aliases",
        )


def _user_page(address: str) -> str:
    return "/admin/users/" + path_of(address.strip())


def _back(back: str | None, default: str) -> str:
    """Where a form asked to go back to, if that stays on the admin pages (no open redirect)."""
    if back and back.startswith("/admin/") and "//" not in back and "\\" not in back:
        return back
    return default
