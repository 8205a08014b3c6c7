"""The web application: routes for client set-up and MTA-STS, and the plain-HTTP redirect.

Theory of operation
-------------------
``application`` builds the aiohttp application the https listener serves, with the web admin
and its JSON API when the server gives it login (``courriel.web.admin_site``). Every set-up
route answers from memory (``Offer``) or the store's domain table, never from a file named by
the request, so no path can reach the disk. The domain comes from the address asked about or
the Host header; it is normalized (IDNA, lower case) and must be hosted, else 404. ``redirect``
answers every request on the http listener with a permanent redirect to the same path on
https, except the ACME HTTP-01 challenges (``courriel.web.acme.http_challenge``, answered from
the store, RFC 8555 §8.3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from courriel import clientsettings
from courriel.config import Config
from courriel.net.ports import Bound
from courriel.net.shared_counts import CountsRow
from courriel.net.tls import TLSManager
from courriel.web import acme, autoconfig, autodiscover, mobileconfig, mtasts, settings
from courriel.web.admin_context import Access, AdminContext
from courriel.web.admin_site import add_admin
from courriel.web.server import WebListener
from courriel.web.settings import Offer

if TYPE_CHECKING:
    from courriel.store.base import Store

log = logging.getLogger("courriel.web")

BODY_TIMEOUT = 10.0  # seconds for a request body to arrive whole
_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-.")


def host_name(request: web.Request) -> str:
    """The Host header's name, lower case, without port; "" when it is not a plain name."""
    host = (request.host or "").lower()
    if host.startswith("["):
        return ""
    name = host.rpartition(":")[0] if ":" in host else host
    name = name.rstrip(".")
    return name if name and set(name) <= _HOST_CHARS else ""


def _domain_of(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return ""
    try:
        return domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


class Site:
    """The handlers, bound to the store and what this worker offers."""

    def __init__(self, store: Store, offer: Offer, policy: str) -> None:
        self.store = store
        self.offer = offer
        self.policy = policy

    async def _hosted(self, domain: str) -> bool:
        return bool(domain) and await self.store.get_domain(domain) is not None

    async def autoconfig(self, request: web.Request) -> web.Response:
        address = request.query.get("emailaddress", "")
        domain = _domain_of(address) if address else host_name(request).removeprefix("autoconfig.")
        if not await self._hosted(domain):
            raise web.HTTPNotFound(text="not a domain hosted here\n")
        body = autoconfig.document(domain, self.offer)
        return web.Response(body=body, content_type=autoconfig.CONTENT_TYPE, charset="utf-8")

    async def autodiscover_xml(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > autodiscover.MAX_REQUEST_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=autodiscover.MAX_REQUEST_BYTES, actual_size=request.content_length or 0
            )
        try:  # the whole body (``read`` stops at client_max_size), not what came so far;
            # one trickled in (slowloris after the head) must not hold the connection
            body = await asyncio.wait_for(request.read(), BODY_TIMEOUT)
        except TimeoutError:
            log.info("autodiscover request refused: body too slow")
            raise web.HTTPRequestTimeout(text="request body too slow\n") from None
        try:
            address = autodiscover.email_address(body)
        except autodiscover.BadRequestError as e:
            log.info("autodiscover request refused: %s", e)
            raise web.HTTPBadRequest(text=f"{e}\n") from None
        if not await self._hosted(_domain_of(address)):
            raise web.HTTPNotFound(text="not a domain hosted here\n")
        body = autodiscover.pox_response(address, self.offer)
        return web.Response(body=body, content_type="application/xml", charset="utf-8")

    async def autodiscover_json(self, request: web.Request) -> web.Response:
        if request.query.get("Protocol", "").lower() != "autodiscoverv1":
            raise web.HTTPBadRequest(text="only Protocol=AutodiscoverV1 is served\n")
        if not await self._hosted(_domain_of(request.query.get("Email", ""))):
            raise web.HTTPNotFound(text="not a domain hosted here\n")
        return web.json_response(autodiscover.json_response(self.offer))

    async def mta_sts(self, request: web.Request) -> web.Response:
        domain = mtasts.policy_domain(host_name(request))
        if domain is None or not await self._hosted(domain):
            raise web.HTTPNotFound(text="no MTA-STS policy for this host\n")
        return web.Response(text=self.policy, content_type="text/plain")  # RFC 8461 §3.2


def application(site: Site, admin: AdminContext | None = None) -> web.Application:
    """The https application; with ``admin``, the web admin and its API too (``admin_site``)."""
    app = web.Application(client_max_size=autodiscover.MAX_REQUEST_BYTES)
    app.router.add_get("/.well-known/autoconfig/mail/config-v1.1.xml", site.autoconfig)
    app.router.add_get("/mail/config-v1.1.xml", site.autoconfig)
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        app.router.add_post(path, site.autodiscover_xml)
    app.router.add_get("/autodiscover/autodiscover.json", site.autodiscover_json)
    app.router.add_get(mtasts.PATH, site.mta_sts)
    if admin is not None:
        add_admin(app, admin)
    return app


def redirect(hostname: str, https_port: int, store: Store | None = None) -> web.Application:
    """Every plain-HTTP request goes to the same path on https, on the Host asked for; with a
    store, ACME HTTP-01 challenges are answered instead."""

    async def to_https(request: web.Request) -> web.Response:
        host = host_name(request) or hostname
        port = "" if https_port == 443 else f":{https_port}"
        raise web.HTTPPermanentRedirect(f"https://{host}{port}{request.rel_url}")

    app = web.Application()
    if store is not None:
        app.router.add_get(acme.CHALLENGE_PATH, acme.http_challenge(store))
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app


def listeners(
    store: Store,
    cfg: Config,
    tls: TLSManager,
    bound: Sequence[Bound],
    access: Access | None = None,
    *,
    counts: CountsRow | None = None,
) -> WebListener | None:
    """The web listeners among ``bound``, ready to start; None when none is enabled. With
    ``access`` (login, as the mail protocols check it) the https listener serves the web admin
    and each user's Apple profile (``courriel.web.mobileconfig``) too."""
    https = [b for b in bound if b.config.name == "https"]
    http = [b for b in bound if b.config.name == "http"]
    if not https and not http:
        return None
    https_port = https[0].port if https else 443
    offer = settings.offer(cfg.hostname, clientsettings.endpoints(bound), https_port)
    policy = mtasts.policy(cfg, tls.info.self_signed)
    served = [(b.config, list(b.sockets)) for b in https]
    served_http = [(b.config, list(b.sockets)) for b in http]
    admin = None
    if access is not None:
        listening: dict[str, list[tuple[str, int]]] = {}
        for b in bound:
            listening.setdefault(b.config.name, []).append((b.address, b.port))
        endpoints = clientsettings.endpoints(bound)
        admin = AdminContext(store, cfg, tls, access, endpoints, listening)
    secure = application(Site(store, offer, policy), admin)
    if access is not None:
        mobileconfig.routes(secure, offer, tls, access.auth, access.limiter)
    return WebListener(
        {
            "https": secure,
            "http": redirect(cfg.hostname, https_port, store),
        },
        served + served_http,
        tls,
        cfg.limits,
        counts=counts,
    )
