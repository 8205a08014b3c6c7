"""A real SQLite store in a temporary directory, opened as tests/store/conftest.py opens it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.store.base import Store
from courriel.store.sqlite import open_sqlite


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield s
    finally:
        await s.close()
