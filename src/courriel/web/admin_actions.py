"""Running one administrative operation for a form: audit it, say how it went, go back.

Theory of operation
-------------------
Every form of the admin pages posts to a handler that calls ``perform`` with one operation of
``courriel.admin`` (or ``admin_access``, ``admin_queue``). A refusal (``AdminError``, or a
store error such as an unknown queue id) is shown on the page the form came from, as the
command line would print it; a success is written to the audit log (``admin_access.audit``:
a row and a log line) and confirmed. Either way the answer is a redirect (303) to a page, so
reloading it never posts the form again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from courriel import admin_access
from courriel.admin import AdminError
from courriel.logs import kv
from courriel.store.base import StoreError
from courriel.web.admin_context import AdminContext
from courriel.web.admin_session import Visitor, clear_flash, flash, flash_of

log = logging.getLogger("courriel.web.admin")


def path_of(address: str) -> str:
    """A URL path segment for an address or domain."""
    return quote(address, safe="@")


def show(
    ctx: AdminContext, request: web.Request, visitor: Visitor, name: str, **context: Any
) -> web.Response:
    """Renders a signed-in page, with the message the last action left, if any."""
    message = flash_of(request)
    response = ctx.render.page(
        name, visitor=visitor, csrf=visitor.csrf, path=request.path, flash=message, **context
    )
    if message:
        clear_flash(response)
    return response


def refuse(visitor: Visitor, action: str, e: Exception, back: str) -> web.HTTPSeeOther:
    """The redirect that shows why ``action`` was refused."""
    text = str(e) or type(e).__name__
    log.info("admin action refused", extra=kv(actor=visitor.actor, action=action, why=text))
    response = web.HTTPSeeOther(back)
    flash(response, f"Refused: {text}")
    return response


async def perform(
    ctx: AdminContext,
    visitor: Visitor,
    op: Awaitable[Any],
    *,
    action: str,
    detail: str,
    done: str,
    back: str,
) -> web.StreamResponse:
    try:
        await op
    except (AdminError, StoreError) as e:
        raise refuse(visitor, action, e, back) from None
    await admin_access.audit(ctx.store, visitor.actor, action, detail)
    response = web.HTTPSeeOther(back)
    flash(response, done)
    raise response
