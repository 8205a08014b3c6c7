"""The PostgreSQL backend (``store.py``), its driver, bodies and change events.

Only ``courriel.store.open`` and the tools that move an installation import this package, and
only when a ``postgresql://`` URL is configured: it needs asyncpg.
"""

from courriel.store.postgres.store import (
    PostgresStore,
    migrate,
    open_postgres,
    open_postgres_url,
    split_url,
)

__all__ = ["PostgresStore", "migrate", "open_postgres", "open_postgres_url", "split_url"]
