"""Fixtures for the command-line tests: a fresh data directory, the command run in-process, and
a way to look into the store the command wrote.

Most tests call ``courriel.cli.main(argv)`` in the test process (fast); ``test_process.py`` runs
the real command as a child process for the paths that need one (exit status, a terminal).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from courriel import cli, config
from courriel.store.base import Store
from courriel.testing.fill import on_store

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str

    def error(self) -> str:
        """The single ``courriel: error:`` line the command must print, without its prefix."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("courriel: error: "), self.err
        return lines[0].removeprefix("courriel: error: ")


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory that the command finds through COURRIEL_DATA."""
    d = tmp_path / "data"
    monkeypatch.setenv("COURRIEL_DATA", str(d))
    monkeypatch.setenv(cli.CHEAP_HASH_ENV, "1")
    return d


@pytest.fixture
def courriel(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """``courriel("user", "list", stdin="...")`` runs the command in-process."""

    def run(*argv: str, stdin: str | bytes | None = None) -> Result:
        if stdin is not None:
            raw = stdin.encode() if isinstance(stdin, str) else stdin
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        capsys.readouterr()
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return Result(status, out, err)

    return run


@pytest.fixture
def in_store(data: Path) -> Callable[[Callable[[Store], Awaitable[T]]], T]:
    """``in_store(lambda s: s.list_domains())`` reads what the command left in the store."""

    def read(fn: Callable[[Store], Awaitable[T]]) -> T:
        return on_store(config.load(), fn)

    return read
