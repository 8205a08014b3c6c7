"""The stress test's server: the same whole-server fixture the end-to-end tests use.

``tests/e2e/conftest.py`` defines ``MailServer``; it is loaded here under its own module name,
so both suites start courriel the same way. This is a plain module the test imports the fixture
from, not a conftest: a second conftest would replace the e2e one under the module name
``conftest`` whenever both directories are collected in one run.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_NAME = "courriel_e2e_server"


def _e2e() -> Any:
    if _NAME not in sys.modules:
        path = Path(__file__).parent.parent / "e2e" / "conftest.py"
        spec = importlib.util.spec_from_file_location(_NAME, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]


@pytest.fixture
def stress_server(tmp_path: Path) -> Iterator[Any]:
    """A running courriel (``MailServer``) whose IMAP engine is real; skipped otherwise."""
    e2e = _e2e()
    server = e2e.start_server(tmp_path)
    try:
        server.require_protocol("imap")
        yield server
    finally:
        server.stop()
