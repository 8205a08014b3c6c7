"""Suite-wide fixtures and the report of what could not be run on this machine.

Tests that need something from outside Python (a mail client program from Debian, a PostgreSQL
server) ask for it through the ``need_program`` fixture or
``courriel.testing.missing.report_missing``. Where it is missing they are skipped with a plain
reason, and the end of the run lists them together, so `make test` says which parts did not run.
With COURRIEL_REQUIRE_ALL=1 (set by CI) a missing part fails instead.

``hasher`` hashes passwords at the cheap test costs. ``store`` is a fresh embedded (SQLite)
store in the test's temporary directory; the store contract suite (tests/store) overrides it
with one per backend. Helpers that are not fixtures live in ``courriel.testing`` and are
imported from there, never from a conftest.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from courriel.accounts.passwords import PasswordHasher
from courriel.store.base import Store
from courriel.store.sqlite import open_sqlite
from courriel.testing.missing import missing, report_missing


@pytest.fixture
def need_program(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``need_program("swaks")`` returns the program's path, or skips/fails plainly."""

    def need(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            report_missing(f"program {name!r}", request.node.nodeid)
        assert path is not None
        return path

    return need


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    """Password hashing with the cheap test costs (production uses argon2id's real ones)."""
    h = PasswordHasher.for_tests()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh embedded store, closed after the test."""
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield s
    finally:
        await s.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not missing():
        return
    tr = terminalreporter
    tr.section("not run on this machine", sep="=", yellow=True)
    for what, nodes in sorted(missing().items()):
        tr.write_line(f"{what}: {len(nodes)} test(s) not run")
        for n in nodes[:5]:
            tr.write_line(f"    {n}")
        if len(nodes) > 5:
            tr.write_line(f"    ... and {len(nodes) - 5} more")
    tr.write_line("CI installs and starts these (see .ci/run); run it as root to get them all.")
