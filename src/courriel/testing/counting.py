"""A store that records the name of every coroutine method called on it, for tests that pin
how many round trips to the database a path makes (each is a transaction; see
``courriel.store.sqlite.driver``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any


class CountingStore:
    """Wraps a store: its coroutine methods are recorded in ``calls``, the rest passes as is."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return self._counted(name, attr)

    def _counted(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await method(*args, **kwargs)

        return counted
