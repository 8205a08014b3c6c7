"""Opening the store the configuration names.

Theory of operation
-------------------
``[store] url`` chooses the backend: empty or ``sqlite:`` -- the embedded SQLite database
``<data_dir>/courriel.db`` with message files under ``[store] blobs``; ``postgresql://`` (or
``postgres://``) -- the PostgreSQL backend, imported only then, so the embedded setup never needs
asyncpg. Either way the schema is brought up to date (numbered SQL files in ``migrations/``,
recorded in ``schema_migrations``) before the store is returned.

``serving`` (SQLite) marks the data directory as served, so that a whole-store export or import
refuses to run beside it (``SqliteStore.claim_directory``), and starts the store's upkeep (a
daily sweep for orphaned body files, done by one of the processes sharing the directory).
Short-lived openers such as the admin CLI pass False: they open the store beside a running
server as one more process.
"""

from __future__ import annotations

import importlib
from typing import Any

from courriel.config import Config
from courriel.store.base import Store, StoreError
from courriel.store.sqlite import open_sqlite

DB_NAME = "courriel.db"


async def open_store(cfg: Config, *, serving: bool = True) -> Store:
    url = cfg.store.url
    if url == "" or url.startswith("sqlite:"):
        sq = await open_sqlite(
            cfg.data_dir / DB_NAME, cfg.resolve(cfg.store.blobs), inline_max=cfg.store.inline_max
        )
        if serving:
            try:
                sq.claim_directory(exclusive=False)
            except BaseException:
                await sq.close()
                raise
            sq.sweep_in_background()
        return sq
    if url.startswith(("postgresql://", "postgres://")):
        try:
            postgres: Any = importlib.import_module("courriel.store.postgres")
        except ImportError as e:
            raise StoreError(
                f"the PostgreSQL backend is not available ({e}); [store] url needs it"
            ) from e
        store: Store = await postgres.open_postgres(cfg)
        return store
    scheme = url.split(":", 1)[0]
    raise StoreError(f"[store] url: unknown scheme {scheme!r} (use '' or postgresql://...)")
