"""courriel.testing ships in the installed package, so it must import without the dev extras."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import courriel.testing


def test_every_testing_module_imports_without_pytest() -> None:
    names = [m.name for m in pkgutil.iter_modules(courriel.testing.__path__, "courriel.testing.")]
    assert names, "courriel.testing has no modules?"
    # A None entry in sys.modules makes ``import pytest`` raise ImportError, as on a server
    # installed without the dev extras.
    code = (
        "import importlib, sys\n"
        "for blocked in ('pytest', '_pytest'):\n"
        "    sys.modules[blocked] = None\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
