"""Fixtures of the in-process web admin tests: a store with an administrator and a user, the
admin application on it, and a cookie-keeping browser (``courriel.testing.webadmin``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from courriel import admin, admin_access
from courriel.accounts.passwords import PasswordHasher
from courriel.store.base import Store
from courriel.testing.webadmin import ADMIN, PASSWORD, USER, Browser, admin_app, admin_config


@pytest.fixture
async def admin_store(store: Store, hasher: PasswordHasher) -> Store:
    await admin.add_domain(store, "example.org")
    await admin.add_user(store, hasher, ADMIN, PASSWORD)
    await admin_access.set_admin(store, ADMIN, True)
    await admin.add_user(store, hasher, USER, PASSWORD)
    return store


@pytest.fixture
async def browser(
    admin_store: Store, hasher: PasswordHasher, tmp_path: Path
) -> AsyncIterator[Callable[[], Awaitable[Browser]]]:
    """``await browser()`` is a new browser (own cookies) on one running admin application."""
    app = admin_app(admin_store, admin_config(tmp_path / "data"), hasher)
    clients: list[TestClient] = []  # type: ignore[type-arg]

    async def make() -> Browser:
        if not clients:
            c = TestClient(TestServer(app))
            await c.start_server()
            clients.append(c)
        return Browser(clients[0])

    yield make
    for c in clients:
        await c.close()
