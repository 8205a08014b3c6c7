"""open_store: the configuration picks the backend and where its files go."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.config import Config, StoreConfig
from courriel.store.base import NewMessage, StoreError
from courriel.store.open import open_store
from courriel.store.sqlite import SqliteStore


def config(tmp_path: Path, url: str = "", blobs: str = "blobs", inline_max: int = 65536) -> Config:
    return Config(
        path=tmp_path / "courriel.toml",
        data_dir=tmp_path,
        hostname="mail.example.org",
        store=StoreConfig(url=url, blobs=blobs, inline_max=inline_max),
    )


@pytest.mark.parametrize("url", ["", "sqlite:"])
async def test_sqlite_in_data_dir(tmp_path: Path, url: str) -> None:
    # inline_max 0: even a two-byte body is a file under [store] blobs
    store = await open_store(config(tmp_path, url, blobs="bodies", inline_max=0))
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "courriel.db"
        await store.add_domain("example.org")
        user = await store.add_user("a@example.org", "h")
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        await store.append([(inbox.id, NewMessage(b"hi", datetime.now(UTC)))])
    finally:
        await store.close()
    assert (tmp_path / "courriel.db").exists()
    assert [p.name for p in (tmp_path / "bodies").rglob("*") if p.is_file()]


async def test_absolute_blob_dir(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    store = await open_store(config(tmp_path / "data", blobs=str(elsewhere)))
    await store.close()
    assert elsewhere.is_dir() and (tmp_path / "data" / "courriel.db").exists()


async def test_postgres_missing_backend_is_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "courriel.store.postgres", None)  # import fails
    with pytest.raises(StoreError, match="PostgreSQL backend is not available") as err:
        await open_store(config(tmp_path, "postgresql://courriel:secret@db.example/courriel"))
    assert "secret" not in str(err.value)  # errors end up in logs


async def test_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown scheme"):
        await open_store(config(tmp_path, "mysql://db"))


async def test_a_whole_store_copy_refuses_to_run_beside_a_server(tmp_path: Path) -> None:
    server = await open_store(config(tmp_path))  # serving: marks the data directory
    admin = await open_store(config(tmp_path), serving=False)  # the CLI: one more process
    try:
        assert isinstance(admin, SqliteStore)
        await admin.add_domain("example.org")  # ordinary commands run beside the server
        with pytest.raises(StoreError, match="in use by a running courriel server"):
            admin.claim_directory(exclusive=True)  # db export, import, copy
        await server.close()
        admin.claim_directory(exclusive=True)
        with pytest.raises(StoreError, match="being exported or imported"):
            await open_store(config(tmp_path))  # and no server starts meanwhile
    finally:
        await server.close()
        await admin.close()
    again = await open_store(config(tmp_path))
    await again.close()
