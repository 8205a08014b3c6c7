"""HTML from Jinja2 templates, and the headers every admin page carries.

Theory of operation
-------------------
A tiny loader of our own rather than aiohttp-jinja2: all it would give us is "render this
template into a ``web.Response``", and its app-key glue and decorators are more to learn than
these lines (its last release is from 2023). Templates are package data
(``courriel/web/templates``), loaded once per worker, autoescaped, with ``StrictUndefined`` so a
misspelt variable fails the test that renders the page instead of printing nothing.

The one style sheet is package data too, read once and served from memory, so no request names
a file. Every page is sent with a Content-Security-Policy that allows no script and no foreign
origin, ``frame-ancestors 'none'`` against clickjacking, and ``no-store``: a signed-in page must
not stay in a shared browser's cache.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from courriel.admin import format_size

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("courriel.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = lambda n: format_size(n) + "B"  # "0B", "512B", "1.5KB", "2GB"
    env.filters["quota"] = format_size  # as a quota field takes it back: "2G"
    env.filters["segment"] = lambda text: quote(str(text), safe="@")  # one URL path segment
    return env


class Renderer:
    """Renders pages for one worker."""

    def __init__(self) -> None:
        self._env = _environment()
        self.css = resources.files("courriel.web").joinpath("static", "courriel.css").read_bytes()

    def page(self, name: str, *, status: int = 200, **context: Any) -> web.Response:
        body = self._env.get_template(name).render(**context)
        return web.Response(
            text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )

    async def stylesheet(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.css, content_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )
