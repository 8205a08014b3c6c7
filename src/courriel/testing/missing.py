"""The list of tests that could not run here, because a program or PostgreSQL is missing.

Theory of operation
-------------------
A test that needs something from outside Python calls ``report_missing``: locally the test is
skipped with a plain reason and remembered here; under COURRIEL_REQUIRE_ALL=1 (set by CI) it
fails instead. tests/conftest.py prints what was remembered at the end of the run, so
`make test` says which parts did not run. One module-level list, because one pytest process
collects one run.
"""

from __future__ import annotations

import os

_missing: dict[str, list[str]] = {}


def require_all() -> bool:
    return os.environ.get("COURRIEL_REQUIRE_ALL") == "1"


def report_missing(what: str, nodeid: str) -> None:
    """Skips (or, under COURRIEL_REQUIRE_ALL=1, fails) the test ``nodeid`` for want of ``what``."""
    _missing.setdefault(what, []).append(nodeid)
    import pytest  # here, not at the top: courriel.testing must import without the dev extras

    message = f"{what} is not available on this machine"
    if require_all():
        pytest.fail(f"{message} (COURRIEL_REQUIRE_ALL=1)")
    pytest.skip(message)


def missing() -> dict[str, list[str]]:
    """What was missing, and the tests that could not run for it."""
    return _missing
