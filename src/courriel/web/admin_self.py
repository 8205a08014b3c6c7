"""The signed-in user's own page: password, app passwords, vacation reply, client settings, the
Apple profile.

Theory of operation
-------------------
Any user may sign in (``admin_session``) and manage their own account here; nothing on these
pages takes the account from the form, so a user can only ever act on themselves. Changing the
password asks for the current one (a session left open on a shared computer must not be enough
to take the account over), goes through the same login limits as a sign-in, ends the user's
other sessions and starts a new one for this browser. The vacation reply is a Sieve script the
page writes and activates (``courriel.admin_vacation``, which says how it lives with the user's
own scripts); the page shows the active script's text, escaped, whoever wrote it. The client
settings are the table ``courriel serve`` prints (``courriel.clientsettings``), built from the
listeners as bound.
"""

from __future__ import annotations

import logging

from aiohttp import web

from courriel import admin, admin_access, admin_vacation, clientsettings
from courriel.admin import AdminError
from courriel.logs import kv
from courriel.store.base import StoreError
from courriel.web.admin_actions import perform, refuse, show
from courriel.web.admin_context import AdminContext
from courriel.web.admin_session import Sessions, Visitor, flash, form

log = logging.getLogger("courriel.web.admin")
PROFILE_URL = "/profile/apple.mobileconfig"


class SelfService:
    def __init__(self, ctx: AdminContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def routes(self, app: web.Application) -> None:
        page = self.sessions.page(admin=False)
        app.router.add_get("/me", page(self.me))
        app.router.add_post("/me/password", page(self.password))
        app.router.add_post("/me/app-passwords/add", page(self.app_password_add))
        app.router.add_post("/me/app-passwords/remove", page(self.app_password_remove))
        app.router.add_post("/me/vacation", page(self.vacation))

    async def _page(
        self, request: web.Request, visitor: Visitor, new: tuple[str, str] | None
    ) -> web.Response:
        ordered = sorted(self.ctx.endpoints, key=clientsettings.order)
        rows = [clientsettings.row(self.ctx.cfg.hostname, ep) for ep in ordered]
        return show(
            self.ctx,
            request,
            visitor,
            "me.html",
            app_passwords=await admin_access.list_app_passwords(self.ctx.store, visitor.user),
            new_password=new,
            settings_header=clientsettings.HEADER,
            settings=rows,
            profile_url=PROFILE_URL,
            vacation=await admin_vacation.state(self.ctx.store, visitor.user),
            vacation_script=admin_vacation.SCRIPT,
            max_days=admin_vacation.MAX_DAYS,
        )

    async def me(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        return await self._page(request, visitor, None)

    async def password(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        fields = await form(request)
        user, ip = visitor.user, request.remote or ""
        refusal = await self.ctx.limiter.check(ip, user.address)
        if refusal is not None:
            raise refuse(visitor, "password change", AdminError(refusal.text), "/me")
        current = await self.ctx.auth.authenticate(
            user.address, fields.get("current", ""), app_passwords=False
        )
        if current is None:
            await self.ctx.limiter.failed(ip, user.address)
            raise refuse(
                visitor, "password change", AdminError("the current password is wrong"), "/me"
            )
        if fields.get("new", "") != fields.get("again", ""):
            raise refuse(visitor, "password change", AdminError("the new passwords differ"), "/me")
        try:
            # Ends every session of the user; this browser gets a new one below.
            await admin.set_password(self.ctx.store, self.ctx.hasher, user.address, fields["new"])
        except AdminError as e:
            raise refuse(visitor, "password change", e, "/me") from None
        await admin_access.audit(self.ctx.store, visitor.actor, "own password", user.address)
        log.info("password changed on the web", extra=kv(user=user.address))
        response = web.HTTPSeeOther("/me")
        await self.sessions.start(request, user, response)
        flash(response, "Your password is changed; other browsers are signed out.")
        raise response

    async def app_password_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        name = (await form(request)).get("name", "")
        try:
            made, secret = await admin_access.add_app_password(self.ctx.store, visitor.user, name)
        except AdminError as e:
            raise refuse(visitor, "app-password add", e, "/me") from None
        await admin_access.audit(
            self.ctx.store, visitor.actor, "app-password add", f"{visitor.user.address} {made.name}"
        )
        return await self._page(request, visitor, (made.name, secret))

    async def app_password_remove(
        self, request: web.Request, visitor: Visitor
    ) -> web.StreamResponse:
        name = (await form(request)).get("name", "")
        return await perform(
            self.ctx,
            visitor,
            admin_access.remove_app_password(self.ctx.store, visitor.user, name),
            action="app-password remove",
            detail=f"{visitor.user.address} {name}",
            done=f"App password {name!r} revoked.",
            back="/me",
        )

    async def vacation(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        user = visitor.user
        try:
            on, text = admin_vacation.parse_form(await form(request))
            other = await admin_vacation.set_vacation(self.ctx.store, user, on, text)
        except (AdminError, StoreError) as e:
            raise refuse(visitor, "vacation", e, "/me") from None
        action = "vacation on" if on else "vacation off"
        await admin_access.audit(
            self.ctx.store, visitor.actor, action, f"{user.address} days={text.days}"
        )
        if on:
            done = "Vacation reply on" + (f"; your script {other!r} still runs." if other else ".")
        else:
            done = "Vacation reply off" + (f"; your script {other!r} is active." if other else ".")
        response = web.HTTPSeeOther("/me")
        flash(response, done)
        raise response
