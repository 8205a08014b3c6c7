"""The web admin and its JSON API on the https application: who builds what, and the routes.

Theory of operation
-------------------
``add_admin`` adds the sign-in pages (``admin_session``), the admin pages (``admin_accounts``,
``admin_ops``), the user's own page (``admin_self``), the style sheet and the JSON API
(``admin_api``) to the application ``courriel.web.app`` builds. They share one
``AdminContext`` per worker. Page URLs:

* ``/`` sends a visitor to ``/login``, an administrator to ``/admin/domains``, a user to ``/me``;
* ``/login`` (GET, POST), ``/logout`` (POST);
* ``/admin/...`` for administrators, ``/me`` for every signed-in user;
* ``/api/v1/...`` with a Bearer token (docs/api.md).
"""

from __future__ import annotations

from aiohttp import web

from courriel.web.admin_accounts import AccountPages
from courriel.web.admin_api import Api
from courriel.web.admin_context import AdminContext
from courriel.web.admin_ops import OperationPages
from courriel.web.admin_self import SelfService
from courriel.web.admin_session import Sessions


def add_admin(app: web.Application, ctx: AdminContext) -> None:
    sessions = Sessions(ctx)
    app.router.add_get("/", sessions.home)
    app.router.add_get("/login", sessions.login_form)
    app.router.add_post("/login", sessions.login)
    app.router.add_post("/logout", sessions.page(admin=False)(sessions.logout))
    app.router.add_get("/static/courriel.css", ctx.render.stylesheet)
    AccountPages(ctx, sessions).routes(app)
    OperationPages(ctx, sessions).routes(app)
    SelfService(ctx, sessions).routes(app)
    Api(ctx).routes(app)
