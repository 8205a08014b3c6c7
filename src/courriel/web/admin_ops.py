"""The admin pages for running the server: queue, recent mail events, status, audit log, tokens.

Theory of operation
-------------------
Like ``admin_accounts``: each GET renders a listing, each POST runs one shared operation
(``courriel.admin_queue``, ``courriel.admin_access``) through ``admin_actions.perform``. The
status page reads what this worker knows (the listeners as bound, the certificate loaded, the
version, when it started) and what the store knows (mail stored per user, the queue); the free
space of the data directory's file system is read in a thread, as any file-system call may
block. Its "Run the server check" form posts to ``/admin/status/check``, which shows the same
page with the report of ``courriel check --server`` (``admin_check``).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime

from aiohttp import web

from courriel import __version__, admin, admin_access, admin_queue
from courriel.store.queue import RecipientState
from courriel.web.admin_actions import perform, refuse, show
from courriel.web.admin_check import CheckRun, ServerCheck
from courriel.web.admin_context import AdminContext
from courriel.web.admin_session import Sessions, Visitor, flash, form

AUDIT_SHOWN = 200
EVENTS_SHOWN = 200


class OperationPages:
    def __init__(self, ctx: AdminContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.server_check = ServerCheck(ctx.cfg, ctx.store)

    def routes(self, app: web.Application) -> None:
        page = self.sessions.page(admin=True)
        app.router.add_get("/admin/queue", page(self.queue))
        app.router.add_post("/admin/queue/retry", page(self.queue_retry))
        app.router.add_post("/admin/queue/remove", page(self.queue_remove))
        app.router.add_get("/admin/events", page(self.events))
        app.router.add_get("/admin/status", page(self.status))
        app.router.add_post("/admin/status/check", page(self.status_check))
        app.router.add_get("/admin/audit", page(self.audit))
        app.router.add_get("/admin/tokens", page(self.tokens))
        app.router.add_post("/admin/tokens/add", page(self.token_add))
        app.router.add_post("/admin/tokens/remove", page(self.token_remove))

    async def queue(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        entries = await admin_queue.entries(self.ctx.store)
        return show(
            self.ctx, request, visitor, "queue.html", entries=entries, queued=RecipientState.QUEUED
        )

    async def queue_retry(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        ident = (await form(request)).get("id", "")
        return await perform(
            self.ctx,
            visitor,
            admin_queue.retry(self.ctx.store, ident),
            action="queue retry",
            detail=ident,
            done=f"{admin_queue.entry_id(ident)} will be tried again now.",
            back="/admin/queue",
        )

    async def queue_remove(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        ident = (await form(request)).get("id", "")
        return await perform(
            self.ctx,
            visitor,
            admin_queue.remove(self.ctx.store, ident),
            action="queue remove",
            detail=ident,
            done=f"{admin_queue.entry_id(ident)} removed from the queue; nobody was told.",
            back="/admin/queue",
        )

    async def events(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        events = await self.ctx.store.list_mail_events(EVENTS_SHOWN)
        return show(self.ctx, request, visitor, "events.html", events=events)

    async def audit(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        entries = await admin_access.audit_entries(self.ctx.store, AUDIT_SHOWN)
        return show(self.ctx, request, visitor, "audit.html", entries=entries)

    async def status(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        return await self._status_page(request, visitor, None)

    async def status_check(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        if self.server_check.busy:
            response = web.HTTPSeeOther("/admin/status")
            flash(response, "A server check is already running; try again when it has ended.")
            raise response
        run = await self.server_check.run(visitor.actor)
        return await self._status_page(request, visitor, run)

    async def _status_page(
        self, request: web.Request, visitor: Visitor, check: CheckRun | None
    ) -> web.Response:
        cert = self.ctx.tls.info
        days_left = (cert.not_after - datetime.now(UTC)).days
        users = await admin.list_users(self.ctx.store)
        queue = await admin_queue.entries(self.ctx.store)
        disk = await asyncio.to_thread(shutil.disk_usage, self.ctx.cfg.data_dir)
        return show(
            self.ctx,
            request,
            visitor,
            "status.html",
            version=__version__,
            hostname=self.ctx.cfg.hostname,
            started=self.ctx.started,
            uptime=int(time.time() - self.ctx.started),
            listening=sorted(self.ctx.listening.items()),
            cert=cert,
            days_left=days_left,
            users=len(users),
            mail_bytes=sum(u.usage.bytes for u in users),
            messages=sum(u.usage.messages for u in users),
            queued=len(queue),
            data_dir=str(self.ctx.cfg.data_dir),
            disk=disk,
            check=check,
        )

    async def tokens(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        tokens = await admin_access.list_api_tokens(self.ctx.store)
        return show(self.ctx, request, visitor, "tokens.html", tokens=tokens, new_token=None)

    async def token_add(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        name = (await form(request)).get("name", "")
        try:
            made, secret = await admin_access.add_api_token(self.ctx.store, name)
        except admin.AdminError as e:
            raise refuse(visitor, "token add", e, "/admin/tokens") from None
        await admin_access.audit(self.ctx.store, visitor.actor, "token add", made.name)
        tokens = await admin_access.list_api_tokens(self.ctx.store)
        return show(
            self.ctx, request, visitor, "tokens.html", tokens=tokens, new_token=(made.name, secret)
        )

    async def token_remove(self, request: web.Request, visitor: Visitor) -> web.StreamResponse:
        name = (await form(request)).get("name", "")
        return await perform(
            self.ctx,
            visitor,
            admin_access.remove_api_token(self.ctx.store, name),
            action="token remove",
            detail=name,
            done=f"API token {name!r} revoked.",
            back="/admin/tokens",
        )
