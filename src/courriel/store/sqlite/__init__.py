"""The SQLite backend (``store.py``), its driver, bodies and change events."""

from courriel.store.sqlite.store import SqliteStore, migrate, open_sqlite

__all__ = ["SqliteStore", "migrate", "open_sqlite"]
